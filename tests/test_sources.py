"""The sources the bulletin cites: no staging copies of sites, no blogs (pipeline.declared.sources)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from pipeline.declared import DATA_DIR, read_declared_production, source_kind, source_problem, validate_declared

#: The shipped tables whose rows a bulletin cites: declared production (the cross-check and the
#: sources annex), trade (the statistical review) and the sanctions windows (embargo flags).
CITED_TABLES = ("declared_production.csv", "kp_trade.csv", "sanctions_windows.csv")
URL = re.compile(r"https?://[^\s,;)\"']+")


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("https://kimberleyprocessstatistics.org/public_statistics", "kp"),
        ("https://www.kimberleyprocess.com/en/system/files/documents/x.pdf", "kp"),
        ("https://press.un.org/en/2005/sc8585.doc.htm", "un"),
        ("https://documents.un.org/doc/undoc/gen/n14/x.pdf", "un"),
        ("https://www.mines.gouv.ci/production", "government"),
        ("https://www.usgs.gov/publications/x", "government"),
        ("https://www.rough-polished.com/en/news/118067.html", "secondary"),
        ("https://www.dev.economie-ivoirienne.ci/activites-sectorielles/production-du-diamant.html", "staging"),
        ("https://public-preview-server.prod.cstreetsandbox.com/2004-final-communique/", "staging"),
        ("https://staging.example.org/x", "staging"),
        ("http://roughdiamondbuyers.com/?paged=2", "blog"),
        ("http://centrafrique-presse.over-blog.com/page/61", "blog"),
        ("https://blog.example.com/post", "blog"),
        ("synthetic: written by pipeline.demo", "synthetic"),
        ("", "none"),
    ],
)
def test_source_kind(source: str, kind: str) -> None:
    assert source_kind(source) == kind
    assert (source_problem(source) is not None) == (kind in {"staging", "blog"})


@pytest.mark.parametrize("name", CITED_TABLES)
def test_cited_tables_have_no_staging_or_blog_source(name: str) -> None:
    table = pd.read_csv(str(DATA_DIR / name), dtype=str, keep_default_na=False)
    urls = [u for cell in table["source"] for u in URL.findall(cell)]
    assert urls, f"{name}: no source URL found"
    refused = sorted({u for u in urls if source_problem(u) is not None})
    assert refused == [], f"{name} cites pages a bulletin may not cite: {refused}"


def test_reader_rejects_staging_and_blog_rows() -> None:
    raw = pd.DataFrame({
        "participant_iso3": ["CIV", "CIV", "CIV"],
        "period": ["2022", "2023", "2024"],
        "carats": ["3968.88", "2367.63", "676"],
        "source": [
            "https://economie-ivoirienne.ci/activites-sectorielles/production-du-diamant.html",
            "http://roughdiamondbuyers.com/?paged=2",
            "https://www.dev.economie-ivoirienne.ci/activites-sectorielles/production-du-diamant.html",
        ],
    })
    table = validate_declared(raw, file="t.csv")
    assert list(table.good["period"]) == ["2022"]
    reasons = {r.line: r.reason for r in table.rejected}
    assert "blog" in reasons[3] and "staging" in reasons[4]


def test_shipped_declared_production_reads_without_rejections() -> None:
    table = read_declared_production()
    assert table.rejected == ()
    kinds = {source_kind(s) for s in table.good["source"]}
    assert kinds <= {"kp", "un", "government", "secondary"}
