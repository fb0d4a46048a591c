"""The cross-check against declared production, and the bulletin."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ._base import _DESIGN, _ILLUSTRATIVE, _JUDGEMENT, _ROW_SOURCES, _param, _Section


class CrosscheckParams(_Section):
    declared_production: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of declared production in KP public-statistics shape (``participant_iso3,
    period, carats, value_usd, source``); ``None``: the shipped, sourced table
    ``pipeline/data/declared_production.csv`` (KP figures from ``kp_production.csv`` plus
    the Côte d'Ivoire DGMG national series; see ``pipeline.declared``)."""
    trade_statistics: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of trade statistics in KP shape (``participant_iso3, period, flow, carats,
    value_usd, certificates, source``); ``None``: the shipped ``pipeline/data/kp_trade.csv``."""
    sanctions_windows: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of embargo / suspension / monitoring windows; ``None``: the shipped
    ``pipeline/data/sanctions_windows.csv`` (dates and sources from
    ``sanctions_kp_timeline.csv``)."""
    gravel_thickness_m: tuple[float, float] = _param((0.5, 2.0), unit="m", source=_ILLUSTRATIVE)
    """Default gravel-bed thickness range (m) when the AOI file gives none. Illustrative,
    NOT sourced: the AOI files should carry the SODEMI / USGS values of their field."""
    grade_ct_per_m3: tuple[float, float] = _param((0.05, 0.5), unit="ct/m³", source=_ILLUSTRATIVE)
    """Default diamond grade range (carats per m3 of gravel) when the AOI file gives none.
    Illustrative, NOT sourced (see ``gravel_thickness_m``)."""
    recovery_frac: tuple[float, float] = _param((0.5, 0.9), unit="fraction (0–1)", source=_JUDGEMENT)
    """Fraction of contained carats artisanal processing recovers (low, high). Judgement,
    NOT sourced: hand jigging and sieving lose small stones; replace with field data."""
    capacity_ratio_flag: float = _param(2.0, unit="ratio (×)", source=_JUDGEMENT, gt=0)
    """Flag ``capacity_exceeds_declared`` when the LOW carat estimate of one AOI-year
    exceeds the participant's whole declared production for that year by this factor.
    Judgement: the low estimate already takes every parameter at its low end, so a factor
    of 2 leaves room for unsourced default parameters before a flag is raised."""
    activity_min_new_ha: float = _param(0.0, unit="ha", source=_DESIGN, ge=0)
    """Newly excavated area (ha) in a period above which the period counts as activity for
    ``activity_in_embargo`` and ``activity_without_declaration``. 0: any new site (the
    sites stage already drops pits below its minimum mapping unit, 0.25 ha)."""
    min_comparison_coverage_frac: float = _param(0.9, unit="fraction (0–1)", source=_DESIGN, gt=0, le=1)
    """Share of a calendar year the monitored periods must cover before that year's detected
    activity is set against the participant's declared production for the whole year. Below
    it the year is "not comparable": ``ratio`` stays empty and ``capacity_exceeds_declared``
    is not raised (half a year of detections against a full year of carats would understate
    the ratio by half). The coverage is shown beside every comparison (``coverage_frac``)."""
    trend_min_change_frac: float = _param(0.25, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, lt=1)
    """``trend_divergence``: year-on-year change (fraction) that counts as rising (>= +25%)
    or falling (<= -25%), for activity and declared production alike. Judgement, NOT
    sourced: tune on the participant's history before quoting a divergence."""
    trend_min_year_coverage_frac: float = _param(0.9, unit="fraction (0–1)", source=_DESIGN, gt=0, le=1)
    """``trend_divergence`` compares only years whose activity periods cover at least this
    fraction of the year's days, so that a partly monitored first year (Sentinel-2 starts
    mid-2015) does not read as a rise."""
    trend_min_valid_frac: float = _param(0.5, unit="fraction (0–1)", source=_DESIGN, ge=0, le=1)
    """``trend_divergence`` compares only years whose day-weighted mean ``valid_fraction``
    (share of the AOI seen clear) is at least this; cloudier years under-count new area."""
    review_robust_z_max: float = _param(3.5, unit="robust z", source="Iglewicz & Hoaglin (1993)", gt=0)
    """Statistical review: flag when |robust z| exceeds this. Robust z = (x - median) /
    (1.4826 MAD) of the participant's other periods (or of its peers); 3.5 is the outlier
    cut-off of Iglewicz & Hoaglin (1993), *How to Detect and Handle Outliers*."""
    review_min_history_n: int = _param(4, unit="periods", source=_DESIGN, ge=2)
    """Statistical review: a period is tested against the participant's history only when
    at least this many other periods (or period-to-period changes) exist; a median and MAD
    of fewer values say little."""
    review_min_peers_n: int = _param(5, unit="participants", source=_DESIGN, ge=2)
    """Statistical review: USD per carat is compared with peers only when at least this
    many other participants report it for the same period."""
    review_min_change_factor: float = _param(1.5, unit="factor (×)", source=_DESIGN, gt=1)
    """Statistical review: a jump or price gap smaller than this factor (x1.5 or /1.5) is
    never flagged, whatever its z; stable series would otherwise flag 10% moves."""
    review_export_tolerance_frac: float = _param(0.05, unit="fraction (0–1)", source=_DESIGN, ge=0)
    """``exports_exceed_supply``: exports may exceed production plus imports by this
    fraction before a flag (rounded trade-press figures: 0.1 Mct on 2-5 Mct is 2-5%)."""

    @field_validator("gravel_thickness_m", "grade_ct_per_m3", "recovery_frac")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] < 0 or v[0] > v[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return v

    @field_validator("recovery_frac")
    @classmethod
    def _fraction(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[1] > 1:
            raise ValueError("a recovered fraction cannot exceed 1")
        return v


class BulletinParams(_Section):
    number: int | None = Field(default=None, ge=1)
    """Bulletin number; ``None``: see ``reissue``. A number already archived is revised."""
    reissue: Literal["revise", "new"] = "revise"
    """A run covering the same period (start and end) as an archived bulletin: ``revise``
    issues a revision of that bulletin ("No. 1, revision 2"); ``new`` issues the next number
    anyway. Other periods always get one more than the highest number in the output root."""
    distribution: str = "KP Participants only"
    """Distribution marking printed on every page."""
    demonstration: bool = False
    """Print "DEMONSTRATION - SYNTHETIC IMAGERY" on every page (set by the demo)."""
    pdf: bool = True
    """Also render ``bulletin.pdf`` (WeasyPrint)."""
    max_chips: int = _param(12, unit="sites per area of interest", source=_DESIGN, ge=1)
    """Most before/after chips per area of interest: every new or expanding site of the latest
    period gets one when there are no more than this; otherwise the ``max_chips`` largest by
    area x confidence do, and the bulletin says how many of how many it shows (all are in its
    site table)."""
    languages: tuple[Literal["en", "fr"], ...] = _param(("en",), unit="language codes", source=_DESIGN, min_length=1)
    """Editions of the bulletin: ``en`` writes ``bulletin.html`` (always written: the output
    contract); each other language adds ``bulletin.<lang>.html`` (and ``bulletin.<lang>.pdf``)
    from the same template and its gettext catalog (``pipeline/bulletin/locale``): ``fr``,
    French (Babel number and date formats: ``1 234,5``, ``30 novembre 2026``)."""
