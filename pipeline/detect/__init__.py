"""PURE: cloud-masked reflectance -> per-pixel excavation evidence -> confirmed change.

These rules are the first of two stages: a transparent candidate generator (each rule is
one line, each threshold a documented field of :class:`pipeline.config.DetectParams` with
its unit and source). Candidates become sites in :mod:`pipeline.sites`; a trained site
classifier (:mod:`pipeline.classify`), when configured, then scores each of them.

1. **Baselines.** Per pixel, a high quantile of NDVI over the clear observations of the
   baseline window (the ``baseline_days`` before the monitoring period): how green the
   place is at its best. And a *season-matched* baseline: the same quantile over the
   baseline observations within ``season_window_days`` of the same day of the year, i.e.
   what the place looked like in the same season before (sandbars and cured grass are
   bare every dry season, river banks flood every wet season).
2. **Evidence** in each clear observation of the monitoring period:
   *vegetation loss* (NDVI at least ``ndvi_drop_min`` below the peak baseline, or the AOI's
   Otsu threshold with ``threshold_method: otsu``, AND at least ``season_drop_min`` below
   the season-matched baseline where that exists) together with *exposed gravel*
   (NDVI <= ``gravel_ndvi_max``, Bare Soil Index >= ``bare_bsi_min``, brightness >=
   ``bright_min``, which excludes dark burn scars, and tillage index NDTI <=
   ``gravel_ndti_max``, which excludes cured grass, straw and ash-covered litter) or *open
   water* (MNDWI >= ``water_mndwi_min``); or *new water* where the baseline never had
   water (flooded pits in bare ground). Optionally (``swir_change_min``, off by default)
   *disturbed bare ground*: SWIR1 differs from the baseline median where the baseline was
   already bare (pits in desert; on real savanna imagery it separates nothing).
   A date on which evidence covers more than ``widespread_loss_max_frac`` of the grid is
   not judged (snow, leaf fall, a regional fire season, haze: the whole landscape moves).
3. **Confirmation** (as pyeo does): a change is confirmed at the first run of
   ``min_confirmations`` consecutive clear observations with evidence; cloudy
   observations neither count nor break the run. The first observation of that run is
   the change date.
4. **Persistence**: at least ``min_persistence_frac`` of the clear observations in the
   ``persistence_window_days`` after the change date must show evidence. Pits stay open;
   burn scars and cleared fields re-green within a season. A pit abandoned later stays a
   (dormant) site.
5. **Re-greening**: ``regrowth_min_obs`` clear observations back within
   ``regrowth_ndvi_margin`` of a green baseline end the change (crops, burn recovery);
   with ``rearm_after_regrowth`` a later confirmed run starts a new change, so ground that
   burnt in January and was dug in March is still reported.
6. **Clean-up**: 8-connected groups of at most ``speckle_max_px`` flagged pixels are
   removed (isolated speckle), which keeps the thin rims of young pits.

Indices (all unitless):
- NDVI = (NIR - Red) / (NIR + Red) (Rouse et al. 1974)
- BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)) (Rikimaru et al. 2002)
- MNDWI = (Green - SWIR1) / (Green + SWIR1) (Xu 2006)
- NDTI = (SWIR1 - SWIR2) / (SWIR1 + SWIR2) (Van Deventer et al. 1997; dry plant matter
  absorbs near 2.1 um, so straw and cured grass are high, mineral soil and gravel low)
- NBR = (NIR - SWIR2) / (NIR + SWIR2) (Key and Benson 2006)
- brightness = mean(Red, NIR, SWIR1)
"""

from __future__ import annotations

from .baselines import drop_widespread, ndvi_change, seasonal_baseline
from .confirm import CHANGE_VARS, confirm_change
from .evidence import score_change
from .flags import flag_excavation
from .indices import spectral_indices
from .stage import (
    APPLIED_THRESHOLDS,
    change_rasters,
    detect_change,
    not_resumable,
    resumable,
    resume_change,
    resumed_change_rasters,
)

__all__ = [
    "APPLIED_THRESHOLDS",
    "CHANGE_VARS",
    "change_rasters",
    "confirm_change",
    "detect_change",
    "drop_widespread",
    "flag_excavation",
    "ndvi_change",
    "not_resumable",
    "resumable",
    "resume_change",
    "resumed_change_rasters",
    "score_change",
    "seasonal_baseline",
    "spectral_indices",
]
