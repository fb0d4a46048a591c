"""What a bulletin shows, as handed over by ``run.py``: :class:`BulletinContext`, :class:`AOIReport`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..composites import CompositeView
from .i18n import N_

__all__ = ["DEMONSTRATION_MARKING", "AOIReport", "BulletinContext"]

#: Printed on every page when :attr:`BulletinContext.demonstration` is true.
DEMONSTRATION_MARKING = N_("DEMONSTRATION - SYNTHETIC IMAGERY")


@dataclass(frozen=True, eq=False)
class AOIReport:
    """Everything the bulletin shows about one area of interest.

    ``sites`` is EPSG:4326 with the ``sites.geojson`` columns; ``sites_utm`` holds
    the same rows in the AOI's UTM CRS (``epsg``), for drawing on the composites.
    ``rgb_before``/``rgb_after`` are ``(H, W, 3)`` float32 true-colour composites
    (reflectance, NaN = no data) of the first and last period, covering
    ``extent_utm`` = ``(left, bottom, right, top)`` in metres. When ``error`` is
    set, the AOI failed and the bulletin shows that message instead of results.
    """

    aoi_id: str
    name: str
    participant: str
    participant_iso3: str
    sites: gpd.GeoDataFrame
    sites_utm: gpd.GeoDataFrame
    activity: pd.DataFrame
    rgb_before: np.ndarray | None
    rgb_after: np.ndarray | None
    extent_utm: tuple[float, float, float, float]
    epsg: int
    new_since_previous: list[str] = field(default_factory=list)
    """Sites of this AOI in no earlier bulletin ("reported for the first time")."""
    listed_again: list[str] = field(default_factory=list)
    """Sites of this AOI listed in an earlier bulletin but not in the last one that processed
    this AOI (:mod:`pipeline.site_history`)."""
    gone_since_previous: list[str] = field(default_factory=list)
    """Sites of this AOI in the previous bulletin that this one no longer lists (dismissed by an
    analyst, or no longer detected with this run's imagery and settings)."""
    error: str | None = None
    """Why the AOI failed, for the operator (``manifest.json``, ``run.log``); not shown to readers."""
    failure: str = "failed"
    """The kind of that failure (:data:`pipeline.errors.FAILURE_KINDS`): what the bulletin says
    (:func:`pipeline.bulletin.wording.failure_text`)."""
    radar_status: str = "off"
    """``off``, ``used`` or ``unavailable: <reason>`` (see :class:`pipeline.workflow.AOIResult`)."""
    n_radar_scenes: int = 0
    composites: list[dict[str, Any]] = field(default_factory=list)
    """Named composites (see :attr:`pipeline.workflow.AOIResult.composites`)."""
    view_method: str = ""
    """Composite method of ``rgb_before``/``rgb_after`` (``geomedian`` or ``median``; empty
    when unknown)."""
    site_model: dict[str, Any] | None = None
    """The site classifier that scored this AOI's candidates (:func:`pipeline.classify.model_summary`);
    ``None``: the rules alone decided."""
    boundary: Any = None
    """The AOI's boundary (shapely geometry, EPSG:4326), drawn on the site map and used to place
    the locator inset's mark; ``None``: not drawn, the mark goes at the centre of ``extent_utm``."""
    dismissed: gpd.GeoDataFrame | None = None
    """Sites analysts judged false alarms (EPSG:4326, ``sites.geojson`` columns): not findings,
    listed apart (:mod:`pipeline.register`)."""
    uncovered_frac: float | None = None
    """Share of the AOI's area (0..1) outside the footprint of every scene used (``None``: not
    measured, the AOI failed before its scenes were known)."""
    coverage_warning: bool = False
    """``uncovered_frac`` reached ``search.warn_uncovered_frac``: the AOI's section says that no
    imagery covers that part."""
    skipped_items: int = 0
    """Items found for this AOI and left out because their imagery could not be read (fetched or
    decoded): the AOI's section says how many; ``manifest.json`` lists each with its reason."""
    confirmable_frac: float | None = None
    """Share of the AOI with the ``confirmations`` clear optical observations a change needs
    over the covering period (:attr:`pipeline.workflow.AOIResult.confirmable_frac`)."""
    confirmations: int = 0
    """``detect.min_confirmations`` of this AOI."""
    participant_outside: dict[str, Any] | None = None
    """``{"km", "country"}`` when the AOI lies that far outside its participant's outline
    (:attr:`pipeline.workflow.AOIResult.participant_outside`)."""
    season_views: list[CompositeView] = field(default_factory=list)
    """The dry-season composites (red, green, blue; same grid and extent as ``rgb_before``),
    oldest first: each chip compares two of them, the same season a year or more apart
    (:func:`pipeline.bulletin.chips.chip_pair`). Empty: the chips compare the first and the
    last reporting period, and say so."""


@dataclass(frozen=True, eq=False)
class BulletinContext:
    """One bulletin: numbering, period, markings, per-AOI reports, cross-check, provenance.

    ``scenes.cloud_cover`` is in percent (STAC ``eo:cloud_cover``).
    ``thresholds`` items are ``{"section", "key", "value", "unit", "description", "source"}``
    with their final ``unit`` (``"m²"``, ``"NDVI"``, ``"CSV file"`` ...; empty: printed as a
    dash) and ``source`` (the citation, ``"design choice"`` ...; empty: printed empty), as
    :func:`pipeline.config.threshold_table` gives them: the bulletin derives neither.
    ``validation`` maps metric names to values when ground truth exists.
    ``previous_number`` is ``None`` for the first bulletin of an output root.
    """

    number: int
    title: str
    period_start: dt.date
    period_end: dt.date
    generated_at: dt.datetime
    distribution: str
    demonstration: bool
    aois: list[AOIReport]
    crosscheck: pd.DataFrame
    flags: pd.DataFrame
    anomalies: pd.DataFrame
    declared_sources: pd.DataFrame
    scenes: pd.DataFrame
    thresholds: list[dict[str, Any]]
    validation: dict[str, Any] | None
    software: dict[str, str]
    config_digest: str
    previous_number: int | None = None
    revision: int = 1
    """Revision of bulletin ``number``: 1 when first issued; a re-run of the period it covers
    revises it (``bulletin.reissue``; see :func:`pipeline.outputs.bulletin_number`)."""
    assessment: dict[str, Any] | None = None
    """The accuracy assessment of the previous bulletin's map (``assessment/estimate.json`` of
    ``python -m pipeline assess``, with ``bulletin_number``), or ``None`` when there is none."""
    site_models: list[dict[str, Any]] = field(default_factory=list)
    """Site classifiers applied in the run (:func:`pipeline.outputs.site_models`); empty: rules only."""
    revision_changes: dict[str, Any] | None = None
    """For a revision, the sites it adds to and removes from the issue it replaces: ``{"revision",
    "added", "removed"}`` (:func:`pipeline.site_history.revision_changes`); ``None`` otherwise."""
    settings_changed: list[dict[str, Any]] = field(default_factory=list)
    """The thresholds whose value differs from the previous bulletin's: ``{"section", "key",
    "before", "after"}`` (:func:`pipeline.site_history.settings_changed`)."""
    max_chips: int = 12
    """Most before/after chips per AOI (``bulletin.max_chips``): every new or expanding site when
    there are no more, else the most significant, with a sentence saying how many of how many."""
