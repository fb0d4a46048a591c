"""Rebuild ``aois/west-central-africa/*.geojson``: AOIs of alluvial diamond areas of KP
participants in West and Central Africa, from the sourced points below.

Each AOI is a north-up square of ``side_km`` (geodesic, WGS84) centred on a point that a cited
page gives in degrees/minutes/seconds; corners from ``pyproj.Geod.fwd`` rounded to 6 decimals,
as the other shipped AOIs (``aois/README.md``). No point here was invented: an area whose
coordinates could not be found in a citable source is listed in ``NOT_INCLUDED`` instead.

    python -m tools.make_wca_aois
"""

from __future__ import annotations

import json
from pathlib import Path

from pyproj import Geod

OUT = Path(__file__).resolve().parents[1] / "aois" / "west-central-africa"

_PARAMS_SOURCE = ("Illustrative ranges, NOT verified: equal to the pipeline defaults (crosscheck.gravel_thickness_m, "
                  "crosscheck.grade_ct_per_m3). Replace them with published gravel thickness and grade for this field "
                  "(e.g. the USGS alluvial diamond assessments) before quoting carat estimates.")

#: aoi_id -> what the file says. ``lat``/``lon``: the cited point, decimal degrees.
AOIS: dict[str, dict[str, object]] = {
    "kono": {
        "name": "Kono field (Koidu / Sefadu)", "participant": "Sierra Leone", "participant_iso3": "SLE",
        "lat": 8.64389, "lon": -10.97167, "side_km": 10.0,
        "location_source": "https://kiwix.colibox.colibris-outilslibres.org/wikipedia_fr_all_mini_2022-10/A/Koidu",
        "location_note": "Koidu town point 8°38′38″N 10°58′18″W (French Wikipedia mirror; the English article, "
                         "https://review.clateway.com/wiki/view_html.php?q=Koidu, gives the same 8.6439N 10.9717W). "
                         "Same point as pipeline/data/aoi_locations.csv.",
        "extent_note": "North-up square of 10 km x 10 km (100 km2) centred on the Koidu town point. It holds the "
                       "town (urban change), the Woyie river that crosses it, and the Koidu Kimberlite Project lease "
                       "(about 4.9 km2, about 2 km south of Koidu: https://www.koiduholdings.com/operations-kkp-location"
                       ".php), whose industrial open pits are not artisanal workings. The Kono alluvial field extends "
                       "well beyond (Yengema, Tefeya, the Bafi river). Footprint not surveyed.",
    },
    "tongo": {
        "name": "Tongo field (Tongoma)", "participant": "Sierra Leone", "participant_iso3": "SLE",
        "lat": 8.650, "lon": -11.067, "side_km": 10.0,
        "location_source": "https://wikimili.com/en/Tongo,_Sierra_Leone",
        "location_note": "Tongo town point 8°39′N 11°4′W (English Wikipedia via WikiMili; given to the minute, "
                         "about +/-0.9 km). Not in pipeline/data/aoi_locations.csv.",
        "extent_note": "North-up square of 10 km x 10 km (100 km2) centred on the Tongo town point, the seat of the "
                       "Tongo diamond field (https://en.wikipedia.org/wiki/Tongo,_Sierra_Leone). The Tongo kimberlite "
                       "licences (134 km2 combined, https://nationaljeweler.com/articles/10882-first-diamonds-from-"
                       "sierra-leone-s-tongo-mine-coming-to-market) were not available as polygons; the square holds "
                       "the town and may miss workings further out. Footprint not surveyed.",
    },
    "akwatia": {
        "name": "Akwatia (Birim river)", "participant": "Ghana", "participant_iso3": "GHA",
        "lat": 6.05, "lon": -0.80, "side_km": 10.0,
        "location_source": "https://iiab.live/kiwix/content/wikipedia_en_all_maxi_2023-05/A/Akwatia",
        "location_note": "Akwatia town point 06°03′00″N 00°48′00″W (English Wikipedia mirror, 2023-05). Same point "
                         "as pipeline/data/aoi_locations.csv.",
        "extent_note": "North-up square of 10 km x 10 km (100 km2) centred on the Akwatia town point, in the Birim "
                       "basin; the diamond reserves cover about 240 km2 along the Birim "
                       "(https://ghanasummary.com/news/7002/akyemkwaa-a-onom-biremu-the-great-akyem-appellation-now-"
                       "a-lost-memory-due-to-galamsey), so this is a first cut. CAVEAT: illegal gold mining "
                       "(galamsey) is widespread in the same basin and leaves the same pits and turbid ponds: "
                       "detected excavation here cannot be attributed to diamonds from imagery alone. Footprint not "
                       "surveyed.",
    },
    "tshikapa": {
        "name": "Tshikapa (Kasai and Tshikapa rivers)", "participant": "Democratic Republic of the Congo",
        "participant_iso3": "COD", "lat": -6.417, "lon": 20.800, "side_km": 10.0,
        "location_source": "https://wikimili.com/en/Tshikapa",
        "location_note": "Tshikapa city point 6°25′S 20°48′E (English Wikipedia via WikiMili; to the minute, about "
                         "+/-0.9 km; French Wikipedia gives 6°25′00″S 20°48′00″E).",
        "extent_note": "North-up square of 10 km x 10 km (100 km2) centred on the city point, at the confluence of "
                       "the Tshikapa and Kasai rivers. The city (38 km2 urban) fills much of it: expect urban change. "
                       "Artisanal workings along both rivers extend far beyond. Footprint not surveyed.",
    },
    "mbuji_mayi": {
        "name": "Mbuji-Mayi", "participant": "Democratic Republic of the Congo", "participant_iso3": "COD",
        "lat": -6.150, "lon": 23.600, "side_km": 20.0,
        "location_source": "https://en.wikipedia.org./wiki/Mbuji_Mayi",
        "location_note": "Mbuji-Mayi city point 06°09′S 23°36′E (English Wikipedia; to the minute, about +/-0.9 km).",
        "extent_note": "North-up square of 20 km x 20 km (400 km2) centred on the city point: the city covers "
                       "135 km2 and MIBA's concession and the artisanal workings lie around and under it; no sourced "
                       "polygon of either was found. Much of the square is urban (expect urban change, mask it). "
                       "Footprint not surveyed.",
    },
    "cafunfo": {
        "name": "Cafunfo (Cuango river, Lunda Norte)", "participant": "Angola", "participant_iso3": "AGO",
        "lat": -8.767, "lon": 18.000, "side_km": 10.0,
        "location_source": "https://goodnames.eth.link/wiki/Cafunfo.html",
        "location_note": "Cafunfo town point 8°46′S 18°00′E (English Wikipedia copy of 2013; to the minute, about "
                         "+/-0.9 km; the current article, https://en.wikipedia.org/wiki/Cafunfo, describes the "
                         "alluvial deposits).",
        "extent_note": "North-up square of 10 km x 10 km (100 km2) centred on the town point, above the Cuango "
                       "river; the Cuango valley's alluvial workings run far north and south of it (about 50 km from "
                       "the DRC border: https://irishtimes.com/news/no-man-s-land-1.29484). Footprint not surveyed.",
    },
}

#: Areas asked for and left out, with why.
NOT_INCLUDED = {
    "banankoro": "Banankoro (Kérouané, Guinea): no citable coordinates found (pages say only '40 km from "
                 "Kérouané'); pipeline/data/aoi_locations.csv says the same.",
    "western-liberia": "Western Liberia (Weasua, Gbarpolu; Lofa river): no citable coordinates found for a "
                       "mining centre.",
}


def square(lon: float, lat: float, side_km: float) -> list[list[float]]:
    g = Geod(ellps="WGS84")
    h = side_km * 1000 / 2
    north = g.fwd(lon, lat, 0, h)[1]
    south = g.fwd(lon, lat, 180, h)[1]
    east = g.fwd(lon, lat, 90, h)[0]
    west = g.fwd(lon, lat, 270, h)[0]
    w, s, e, n = (round(v, 6) for v in (west, south, east, north))
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]  # counter-clockwise


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for aoi_id, spec in AOIS.items():
        props = {
            "aoi_id": aoi_id,
            "name": spec["name"],
            "participant_iso3": spec["participant_iso3"],
            "participant": spec["participant"],
            "gravel_thickness_m": [0.5, 2.0],
            "grade_ct_per_m3": [0.05, 0.5],
            "params_source": _PARAMS_SOURCE,
            "location_source": spec["location_source"],
            "location_note": spec["location_note"],
            "extent_note": spec["extent_note"],
        }
        ring = square(float(spec["lon"]), float(spec["lat"]), float(spec["side_km"]))  # type: ignore[arg-type]
        doc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
        (OUT / f"{aoi_id}.geojson").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
