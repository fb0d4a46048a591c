"""Offline demo scenario: a synthetic Sentinel-2 L2A time series as a static STAC catalog.

:func:`write_scenario` writes, for one AOI, a realistic synthetic Sentinel-2 L2A time series
as Cloud-Optimized GeoTIFFs, a self-contained static STAC catalog that follows the Earth
Search ``sentinel-2-c1-l2a`` conventions (asset keys, ``raster:bands`` scale/offset/nodata,
``s2:processing_baseline``), and the ground truth. The monitoring pipeline searches and
loads it with pystac / odc-stac exactly like real data: the demo is the same code path.

The scene is northern Côte d'Ivoire Guinea savanna (wet season May-October, harmattan haze
December-February): seasonal savanna, gallery forest along meandering rivers, laterite
outcrops (bowal), a village, excavation pits that open during the monitoring period, and
distractors that are not mining (a burn scar, cleared fields that re-green). Clouds, cloud
shadows, haze, sensor noise and an imperfect Sen2Cor-like SCL are added per date.

Layout of ``out_dir``::

    catalog/catalog.json                                  root (self-contained, relative links)
    catalog/sentinel-2-c1-l2a/collection.json
    catalog/sentinel-2-c1-l2a/<item id>/<item id>.json    + B02 B03 B04 B08 B8A B11 B12 SCL .tif
    aoi.geojson          the AOI (EPSG:4326), footprint shrunk by 100 m
    truth.geojson        pits (final extent) and distractors (EPSG:4326)
    truth_opened.tif     int32 days since 1970-01-01 each pit pixel was first exposed, else 0
    scenario.json        spec, spec hash, grid and per-item cloud statistics

With ``ScenarioSpec(with_s1=True)`` a synthetic Sentinel-1 RTC collection is added, following
the Planetary Computer ``sentinel-1-rtc`` item conventions (assets ``vv``/``vh``: float32
linear gamma0 COGs, ``raster:bands`` nodata -32768, ``sar:*`` and ``sat:*`` properties)::

    catalog/sentinel-1-rtc/collection.json
    catalog/sentinel-1-rtc/<item id>/<item id>.json       + vv.tif vh.tif (10 m, same grid)

Radar sees the same pits, distractors, rivers and seasons as the optical scene, through
the clouds; speckle is multiplicative and gamma-distributed (see
:func:`~pipeline.demo.radar._render_s1`).

Everything is deterministic in ``spec.seed``: the same spec gives byte-identical COGs and
identical JSON. Everything is synthetic; no value here describes the real Séguéla field.

Modules, in the order of the flow:

- :mod:`~pipeline.demo.spec`: what to build (:class:`ScenarioSpec`), what was built
  (:class:`ScenarioResult`), the spec hash;
- :mod:`~pipeline.demo.conventions` and :mod:`~pipeline.demo.surfaces`: product conventions
  of the real catalogs; spectra, backscatter and seasonal curves of the surfaces;
- :mod:`~pipeline.demo.shapes`, :mod:`~pipeline.demo.scene`, :mod:`~pipeline.demo.landscape`:
  random geometry, the scene model and its timelines, building the scene once;
- :mod:`~pipeline.demo.sandbars`, :mod:`~pipeline.demo.dryseason`,
  :mod:`~pipeline.demo.artifacts`: the optional harder cases (seasonal sandbar river, cured
  savanna and yearly fires, missed haze and co-registration jitter; off by default, see
  :data:`~pipeline.demo.spec.HARD_CASE_FIELDS`);
- :mod:`~pipeline.demo.render` and :mod:`~pipeline.demo.radar`: one optical / radar date;
- :mod:`~pipeline.demo.cogs`, :mod:`~pipeline.demo.stac`, :mod:`~pipeline.demo.geojson`,
  :mod:`~pipeline.demo.truth`: the files written;
- :mod:`~pipeline.demo.write`: :func:`write_scenario`, which runs all of the above.
"""

from .spec import ScenarioResult, ScenarioSpec
from .stac import remove_optical_items
from .write import write_scenario

__all__ = ["ScenarioResult", "ScenarioSpec", "remove_optical_items", "write_scenario"]
