"""KP participants: ISO3 codes and names, and the spellings that statistics and the trade
press use for them."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

#: KP participants (ISO 3166-1 alpha-3; the European Union as ``EU``, one participant
#: for all its member states; Chinese Taipei's rough-diamond trading entity as ``TWN``).
#: Union of the 31 Oct 2003 list (Chair's notice, https://rapaportfairtrade.com/2003/10/31/updated-kp-participants-list/,
#: which includes states that later joined the EU) and participants admitted since
#: (https://www.kimberleyprocess.com/en/participants-et-observateurs lists the current
#: ones). Not exhaustive for recent admissions: pass ``known_participants=`` to extend.
KP_PARTICIPANTS: Mapping[str, str] = {
    "AGO": "Angola",
    "ARE": "United Arab Emirates",
    "ARM": "Armenia",
    "AUS": "Australia",
    "BGD": "Bangladesh",
    "BGR": "Bulgaria",
    "BLR": "Belarus",
    "BRA": "Brazil",
    "BWA": "Botswana",
    "CAF": "Central African Republic",
    "CAN": "Canada",
    "CHE": "Switzerland",
    "CHN": "China",
    "CIV": "Côte d'Ivoire",
    "CMR": "Cameroon",
    "COD": "Democratic Republic of the Congo",
    "COG": "Republic of the Congo",
    "EU": "European Union",
    "GAB": "Gabon",
    "GBR": "United Kingdom",
    "GHA": "Ghana",
    "GIN": "Guinea",
    "GUY": "Guyana",
    "HRV": "Croatia",
    "HUN": "Hungary",
    "IDN": "Indonesia",
    "IND": "India",
    "ISR": "Israel",
    "JPN": "Japan",
    "KAZ": "Kazakhstan",
    "KHM": "Cambodia",
    "KOR": "Republic of Korea",
    "LAO": "Lao People's Democratic Republic",
    "LBN": "Lebanon",
    "LBR": "Liberia",
    "LKA": "Sri Lanka",
    "LSO": "Lesotho",
    "MEX": "Mexico",
    "MLI": "Mali",
    "MUS": "Mauritius",
    "MYS": "Malaysia",
    "NAM": "Namibia",
    "NOR": "Norway",
    "NZL": "New Zealand",
    "PAN": "Panama",
    "POL": "Poland",
    "ROU": "Romania",
    "RUS": "Russian Federation",
    "SGP": "Singapore",
    "SLE": "Sierra Leone",
    "SVN": "Slovenia",
    "SWZ": "Eswatini",
    "TGO": "Togo",
    "THA": "Thailand",
    "TUR": "Türkiye",
    "TWN": "Chinese Taipei",
    "TZA": "Tanzania",
    "UKR": "Ukraine",
    "USA": "United States",
    "VEN": "Venezuela",
    "VNM": "Viet Nam",
    "ZAF": "South Africa",
    "ZWE": "Zimbabwe",
}

# Names as KP statistics and the trade press print them -> ISO3 (normalised: no
# accents, lower case, letters and spaces only).
_NAME_ALIASES: Mapping[str, str] = {
    "cote d ivoire": "CIV",
    "ivory coast": "CIV",
    "congo democratic republic of": "COD",
    "democratic republic of congo": "COD",
    "drc": "COD",
    "congo republic of": "COG",
    "congo": "COG",
    "european community": "EU",
    "european union": "EU",
    "korea republic of": "KOR",
    "south korea": "KOR",
    "laos": "LAO",
    "lao pdr": "LAO",
    "russia": "RUS",
    "swaziland": "SWZ",
    "turkey": "TUR",
    "united states of america": "USA",
    "usa": "USA",
    "uae": "ARE",
    "vietnam": "VNM",
    "tanzania united republic of": "TZA",
    "china peoples republic of": "CHN",
    "taipei": "TWN",
    "uk": "GBR",
}


def _known(known: Iterable[str] | None) -> frozenset[str]:
    return frozenset(KP_PARTICIPANTS) if known is None else frozenset(str(k).upper() for k in known)


def _iso3_for_name(name: str) -> str:
    key = _norm_name(name)
    if key in _NAME_ALIASES:
        return _NAME_ALIASES[key]
    for iso3, canonical in KP_PARTICIPANTS.items():
        if _norm_name(canonical) == key:
            return iso3
    return ""


def _norm_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())
