"""EDGE: check every input of a monitor run before anything is computed or written.

:func:`preflight_inputs` is called by :func:`pipeline.run.run_monitor` after the AOI files
and the configuration have been read, and before the Dask client starts or ``--out`` is
touched. Each problem is one :class:`~pipeline.errors.MonitorError` line naming the file,
field or item and the fix (exit status 2); nothing has been written when it is raised.

What is checked here (the config and AOI files check themselves when read):

- **the period**: ``period.start`` / ``--start`` before the first Sentinel scene or in the
  future (no imagery can exist; a run would publish an empty bulletin);
- **the statistics tables** configured (``crosscheck.*``): readable, UTF-8, within
  :data:`pipeline.limits.MAX_TABLE_BYTES`, the columns of the KP shape, and every row valid:
  a row the validators would leave out (negative or text carats, a duplicate period, an
  unknown participant) is refused with its line, since a declared figure dropped silently
  reads as "not declared" in the bulletin;
- **a static catalog** (``--source`` a path): every ``catalog.json`` / ``collection.json`` /
  item JSON it links to readable and valid (size, encoding, JSON, STAC type, links to files
  that exist, items with a date), the bands of ``acquire.bands`` present, and each AOI
  covered by at least one item in its search period; an AOI that no item covers but would
  be covered with longitude and latitude swapped is reported as swapped;
- **a STAC API's collections**: ``source.collection`` (and ``radar.collection`` when radar is
  on) asked of the API once, without retries; refused only when the API answers that it has no
  such collection (a typo otherwise fails every AOI with "no items"); an API that cannot be
  reached or does not answer is left to the search, which reports it per AOI;
- **the output folder**: not a file, no symbolic link where the run writes (``run.log``,
  ``composites/``, ``archive/``...: a run never writes outside ``--out``), and the state
  a run reads from it (``sites.geojson``, the archived bulletins) readable, so that a
  corrupt file is reported instead of failing every AOI and replacing the site history;
- **the cache folder**: not a file.

``scenes`` (a dry run) calls :func:`preflight_dry_run`: the same checks, without the output
folder and the tables it does not use, so that it refuses what ``monitor`` would.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from . import search
from .aoi_radar import radar_source
from .cache import resolve_cache_dir
from .config import MonitorConfig
from .declared import CrosscheckTables, DeclaredTable, read_declared_production, read_trade, read_windows
from .errors import (
    ConfigError,
    DeclaredStatsError,
    MissingBandError,
    MonitorError,
    NoCollectionError,
    NoScenesError,
    SearchError,
)
from .io import nearest_existing, probe_writable
from .jobs import AOIJob, monitoring_period
from .limits import MAX_JSON_BYTES, load_json, read_text
from .locks import RUN_LOCK_NAME
from .numbering import is_archive_folder
from .providers.static import catalog_path
from .runfolder import INCOMPLETE_MARKER, OUTPUT_DIRS, latest_archive

__all__ = [
    "OUTPUT_FILES",
    "check_api_collections",
    "check_out_dir",
    "check_period",
    "check_static_catalog",
    "check_tables",
    "preflight_inputs",
]

#: Files a monitor run writes at the top of its output folder.
OUTPUT_FILES: tuple[str, ...] = (
    "run.log", "sites.geojson", "sites.gpkg", "sites_dismissed.geojson", "activity.csv", "crosscheck.csv",
    "flags.csv", "bulletin.html", "bulletin.pdf", "bulletin.json", "manifest.json", RUN_LOCK_NAME, INCOMPLETE_MARKER,
)
#: The bulletin in other languages (``bulletin.fr.html``, ``bulletin.fr.pdf``).
_BULLETIN_EDITION = re.compile(r"^bulletin\.[a-z]{2,3}\.(html|pdf)$")
#: Most JSON documents walked in one static catalog (a runaway or cyclic catalog).
MAX_CATALOG_DOCUMENTS = 200_000


def preflight_inputs(cfg: MonitorConfig, jobs: Sequence[AOIJob], *, today: dt.date | None = None
                     ) -> CrosscheckTables:
    """Every check of the module docstring, in order; the first problem is raised. Returns the
    cross-check's tables as checked (:func:`check_tables`).

    Raises
    ------
    MonitorError
        One line naming the file, field or item and the fix.
    """
    check_period(cfg, today=today)
    tables = check_tables(cfg)
    check_out_dir(cfg.out_dir)
    _check_reads(cfg, jobs)
    return tables


def preflight_dry_run(cfg: MonitorConfig, jobs: Sequence[AOIJob], *, today: dt.date | None = None,
                      writes_cache: bool = True) -> None:
    """The checks of :func:`preflight_inputs` that concern what a run would read (``scenes``,
    ``train``): the period, the cache folder, the static catalog and the API's collections.
    ``scenes`` refuses what ``monitor`` refuses, with the same line; the output folder and the
    statistics tables, which it does not use, are not checked. ``writes_cache=False`` (``scenes``,
    which writes nothing): the cache folder is not probed for writing."""
    check_period(cfg, today=today)
    _check_reads(cfg, jobs, writes_cache=writes_cache)


def _check_reads(cfg: MonitorConfig, jobs: Sequence[AOIJob], *, writes_cache: bool = True) -> None:
    """What a run reads from: the cache folder, a static catalog, a STAC API's collections."""
    check_cache_dir(cfg, writable=writes_cache)
    check_static_catalog(cfg, jobs)
    check_api_collections(jobs)


def check_demo_inputs(cfg: MonitorConfig, imagery: tuple[dt.date, dt.date], *,
                      today: dt.date | None = None) -> None:
    """What ``demo`` can check before it writes its scenario (about 170 MB into ``--out``):
    the period (in the past, and overlapping the scenario's ``imagery`` dates: a period whose
    baseline alone overlaps them would find no scene to monitor after the writing) and the
    output folder. The scheduler is joined there too (:func:`pipeline.cluster.dask_client`), by the caller."""
    check_period(cfg, today=today)
    start, end, _ = monitoring_period(cfg, today=today)
    search_start = start - dt.timedelta(days=cfg.detect.baseline_days)
    if end < imagery[0] or start > imagery[1]:  # the monitored months themselves hold no scene
        raise ConfigError(
            f"period {start}..{end} (with its baseline from {search_start}): the demo scenario's imagery covers "
            f"{imagery[0]}..{imagery[1]} only; use configs/demo.yaml, or set period.start and period.end within it"
        )
    check_out_dir(cfg.out_dir)


#: The first Sentinel scene (Sentinel-1A, launched 3 April 2014; Sentinel-2A followed on 23 June
#: 2015): a period that starts earlier asks for imagery that cannot exist.
FIRST_SENTINEL_DAY = dt.date(2014, 4, 3)


def check_period(cfg: MonitorConfig, *, today: dt.date | None = None) -> None:
    """Refuse a monitoring period that starts or ends in the future: its reporting periods would
    report areas and "no new site" for months no satellite has seen yet; or that starts before
    the first Sentinel scene (:data:`FIRST_SENTINEL_DAY`; ``--start 0001-01-01`` was reported as
    a catalog that could not be read, its baseline's date out of range)."""
    today = today or dt.datetime.now(dt.UTC).date()
    start, end, _ = monitoring_period(cfg, today=today)
    if start < FIRST_SENTINEL_DAY:
        raise ConfigError(
            f"period.start {start} (--start or the config) is before the first Sentinel imagery "
            f"({FIRST_SENTINEL_DAY}, Sentinel-1A; Sentinel-2A from 2015-06-23); give a start from then on"
        )
    if start > today:
        raise ConfigError(
            f"period.start {start} (--start or the config) is in the future (today is {today}): no imagery "
            "exists yet; give a monitoring period that has begun"
        )
    if end > today + dt.timedelta(days=1):  # a day's slack: "today" east of UTC
        raise ConfigError(
            f"period.end {end} (--end or the config) is in the future (today is {today}): the bulletin would "
            f"report months not yet observed; set it to {today} or earlier, or leave it out (the period then "
            "ends today)"
        )


def check_tables(cfg: MonitorConfig) -> CrosscheckTables:
    """Read and validate the declared-production, trade and windows tables (``crosscheck.*``;
    the shipped ones where unset); refuse rejected rows of a configured table (the shipped
    tables are package data, checked by the test suite). Returns the tables as read: the run
    cross-checks with these, not with a later reading of the files."""
    params = cfg.crosscheck
    tables: dict[str, Any] = {}
    for key, reader in (("declared_production", read_declared_production), ("trade_statistics", read_trade),
                        ("sanctions_windows", read_windows)):
        path = getattr(params, key)
        try:
            tables[key] = table = reader(path)
        except DeclaredStatsError as exc:
            if path is None:
                raise
            raise DeclaredStatsError(f"crosscheck.{key}: {exc}") from None
        if path is not None and isinstance(table, DeclaredTable) and table.rejected:
            first = table.rejected[0]
            more = f" ({len(table.rejected)} rows rejected)" if len(table.rejected) > 1 else ""
            raise DeclaredStatsError(
                f"crosscheck.{key}: {first.file} line {first.line}: {first.reason}{more}; fix or delete the row: "
                "a figure left out would read as not declared"
            )
    return CrosscheckTables(declared=tables["declared_production"], trade=tables["trade_statistics"],
                            windows=tables["sanctions_windows"])


def check_out_dir(out_dir: Path) -> None:
    """The output folder can hold a run, links no file outside itself, and its state is readable."""
    out_dir = Path(out_dir)
    probe = nearest_existing(out_dir)
    if probe != out_dir and not probe.is_dir():
        raise ConfigError(
            f"cannot create output folder {out_dir}: {probe} is a file, not a folder; pass --out a folder"
        )
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"output folder {out_dir} is a file, not a folder; pass --out a folder (or remove the file)")
    editions = [p.name for p in out_dir.iterdir() if _BULLETIN_EDITION.match(p.name)]
    for name in (*OUTPUT_FILES, *editions, *OUTPUT_DIRS):
        path = out_dir / name
        if path.is_symlink():
            raise ConfigError(
                f"{path} is a symbolic link (to {path.readlink()}); a run writes only inside its output "
                "folder: remove the link, or pass another --out"
            )
        if name in OUTPUT_DIRS and path.exists() and not path.is_dir():
            raise ConfigError(f"{path} is a file where the run writes a folder; move it away, or pass another --out")
        if name in OUTPUT_FILES and path.is_dir():
            raise ConfigError(f"{path} is a folder where the run writes a file; move it away, or pass another --out")
    archive = out_dir / "archive"
    if archive.is_dir():
        for entry in archive.iterdir():
            if entry.is_symlink():
                raise ConfigError(
                    f"{entry} is a symbolic link (to {entry.readlink()}); the archive holds the bulletins "
                    "themselves: replace the link by the folder, or pass another --out"
                )
            if is_archive_folder(entry.name.removeprefix(".").removesuffix(".part")) and not entry.is_dir():
                raise ConfigError(f"{entry} is a file where the archive holds a bulletin's folder (the run would "
                                  "fail when it archives its bulletin); restore the folder from a copy, or move the "
                                  "file out of archive/")
            if entry.is_dir() and is_archive_folder(entry.name):
                _check_archived(entry)
    # The history the run starts from: sites.geojson (unless a killed run's marker says it
    # will be restored from the archive, checked above).
    if not (out_dir / INCOMPLETE_MARKER).exists():
        _check_sites(out_dir / "sites.geojson", archived=latest_archive(out_dir))


def check_cache_dir(cfg: MonitorConfig, *, writable: bool = True) -> None:
    """The window cache folder, when it exists, is a folder, and the run can write it (or, when
    it does not exist yet, create it): otherwise the run would fail at its first fetch, with
    its output folder already begun. ``writable=False``: the writing is not probed (a probe
    makes and removes a folder in it)."""
    cache = resolve_cache_dir(cfg.cache_dir)
    if cache.exists() and not cache.is_dir():
        raise ConfigError(f"cache folder {cache} is a file, not a folder; pass --cache (or cache_dir, or "
                          "KP_MONITOR_CACHE_DIR) a folder")
    probe = nearest_existing(cache)
    if probe.is_symlink() and not probe.exists():
        raise ConfigError(f"cache folder {cache}: {probe} is a symbolic link to nothing ({probe.readlink()}); "
                          "remove it, or pass --cache another folder")
    if not probe.is_dir():
        raise ConfigError(f"cannot create cache folder {cache}: {probe} is a file, not a folder; pass --cache a folder")
    if not writable:
        return
    try:
        probe_writable(probe)  # what the fetch will do, without leaving anything
    except OSError as exc:
        what = "cannot be written" if probe == cache else f"cannot be created in {probe}"
        raise ConfigError(f"cache folder {cache} {what} ({exc.strerror or exc}); pass --cache (or cache_dir, or "
                          "KP_MONITOR_CACHE_DIR) a folder this user can write") from None


def check_static_catalog(cfg: MonitorConfig, jobs: Sequence[AOIJob]) -> None:
    """A static catalog's documents are valid, its items carry the bands, and every AOI is covered."""
    url = cfg.source.url
    if not search.is_static_source(url):
        return
    root, _ = check_catalog_documents(url)
    for job in jobs:
        _check_coverage(job, root)


def check_catalog_documents(url: str) -> tuple[Path, int | None]:
    """The static catalog at ``url`` (a path or ``file://`` URL) and every document it links:
    readable and valid (see the module docstring). Returns the root document's path and its
    number of items (``None`` when it links remote documents, whose items are not counted);
    also ``sources check``'s test of a static source."""
    root = catalog_path(url)
    if root.is_dir():
        raise ConfigError(f"--source {root} is a folder; pass the catalog.json (or collection.json) inside it")
    if not root.exists():
        raise ConfigError(
            f"static catalog {root} does not exist; pass --source a STAC API URL or a catalog.json path"
        )
    return root, _walk_catalog(root)


def check_api_collections(jobs: Sequence[AOIJob]) -> None:
    """Each distinct STAC API collection the jobs search (optical, and radar when enabled) exists."""
    seen: set[tuple[str, str, str]] = set()
    for job in jobs:
        wanted = [(job.cfg.source, "source.collection")]
        if job.cfg.radar.enabled:
            wanted.append((radar_source(job.cfg), "radar.collection"))
        for source, key in wanted:
            if (source.url, source.collection, key) in seen or search.is_static_source(source.url):
                continue
            seen.add((source.url, source.collection, key))
            search.check_collection(source, key=key)


# --------------------------------------------------------------------------- helpers


def _walk_catalog(root: Path) -> int | None:
    """Read every JSON document the catalog links to (child and item links to local files);
    return the number of items (``None`` when it links remote documents, not read here). One
    line per problem, naming the file."""
    fix = "repair or re-export the static catalog"
    seen: set[Path] = set()
    stack = [root.resolve()]
    n_items = 0
    remote = False
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        if len(seen) > MAX_CATALOG_DOCUMENTS:
            raise ConfigError(f"static catalog {root} links more than {MAX_CATALOG_DOCUMENTS:,} documents; {fix}")
        text = read_text(path, what="static catalog file", max_bytes=MAX_JSON_BYTES, fix=fix)
        doc = load_json(text, path=path, what="static catalog file")
        kind = doc.get("type") if isinstance(doc, dict) else None
        if kind not in ("Catalog", "Collection", "Feature"):
            raise ConfigError(
                f"static catalog file {path} is not a STAC catalog, collection or item (type {kind!r}); {fix}"
            )
        if kind == "Feature":
            _check_item(doc, path)
            n_items += 1
            continue
        links = doc.get("links", [])
        if not isinstance(links, list):
            raise ConfigError(f"static catalog file {path}: 'links' is not a list; {fix}")
        for link in links:
            if not isinstance(link, dict) or link.get("rel") not in ("child", "item"):
                continue
            href = str(link.get("href", ""))
            if "://" in href and not href.startswith("file://"):
                remote = True
                continue  # a remote child: read by the search as any remote document
            target = Path(href.removeprefix("file://"))
            target = target if target.is_absolute() else (path.parent / target)
            if not target.is_file():
                raise ConfigError(
                    f"static catalog file {path}: {link['rel']} link {href} names a file that does not exist; {fix}"
                )
            stack.append(target.resolve())
    return None if remote else n_items


def _check_item(doc: dict[str, Any], path: Path) -> None:
    import pystac

    props = doc.get("properties")
    item_id = doc.get("id", "?")
    if not isinstance(props, dict) or not (
        props.get("datetime") or (props.get("start_datetime") and props.get("end_datetime"))
    ):
        raise ConfigError(
            f"item {item_id} ({path}) has no datetime (nor start_datetime and end_datetime); give it its "
            "acquisition time or remove it from the catalog"
        )
    _check_item_numbers(doc, props, item_id=item_id, path=path)
    try:
        pystac.Item.from_dict(doc, migrate=False)
    except Exception as exc:  # pystac raises many types for malformed items
        reason = " ".join(str(exc).split())[:160]
        raise ConfigError(f"item {item_id} ({path}) is not a valid STAC item: {reason}") from None


def _check_item_numbers(doc: dict[str, Any], props: dict[str, Any], *, item_id: Any, path: Path) -> None:
    """The item fields a run reads as numbers are numbers: ``eo:cloud_cover`` and each
    asset's ``raster:bands`` ``scale``, ``offset`` and ``nodata`` (which may also be ``"nan"``,
    ``"inf"`` or ``"-inf"``, as the raster extension allows). A text there was reported as the
    catalog failing to read ("could not convert string to float"), naming neither item nor field."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    fix = "repair or re-export the static catalog"
    cloud = props.get("eo:cloud_cover")
    if cloud is not None and not number(cloud):  # (a -1 some exporters write for "unknown" passes, as before)
        raise ConfigError(f"item {item_id} ({path}): eo:cloud_cover {cloud!r} is not a number; {fix}")
    assets = doc.get("assets")
    for key, asset in (assets.items() if isinstance(assets, dict) else ()):
        bands = asset.get("raster:bands") if isinstance(asset, dict) else None
        for i, band in enumerate(bands if isinstance(bands, list) else ()):
            for field in ("scale", "offset", "nodata"):
                value = band.get(field) if isinstance(band, dict) else None
                if value is None or number(value) or (field == "nodata" and value in ("nan", "inf", "-inf")):
                    continue
                raise ConfigError(f"item {item_id} ({path}): asset {key!r} raster:bands[{i}].{field} {value!r} is not "
                                  f"a number; {fix}")


def _check_coverage(job: AOIJob, root: Path) -> None:
    cfg = job.cfg
    where = f"AOI file {job.row.get('source_file', '?')} (aoi_id '{job.aoi_id}')"
    try:
        search.search_items(
            job.geometry, job.search_start, job.end, source=cfg.source, params=cfg.search, bands=cfg.acquire.bands
        )
    except MissingBandError as exc:
        raise ConfigError(f"static catalog {root}: {' '.join(str(exc).split())}") from None
    except NoCollectionError as exc:  # the configured collection is at fault, not the AOI
        raise ConfigError(f"source.collection {cfg.source.collection!r}: {' '.join(str(exc).split())}") from None
    except NoScenesError:
        swapped = _swapped(job.geometry)
        if swapped is not None and _covered(swapped, job, root):
            raise ConfigError(
                f"{where}: no item of static catalog {root} covers it, but with longitude and latitude swapped "
                "items do; GeoJSON positions are [longitude, latitude]: swap the coordinates"
            ) from None
        bounds = tuple(round(b, 4) for b in job.geometry.bounds)
        raise ConfigError(
            f"{where}: no item of static catalog {root} covers its bounds {bounds} between {job.search_start} and "
            f"{job.end} (baseline included); check the AOI, the period and --source"
        ) from None
    except SearchError as exc:
        raise ConfigError(" ".join(str(exc).split())) from None
    except MonitorError:
        raise
    except Exception as exc:  # pystac on a catalog it cannot walk
        reason = " ".join(str(exc).split())[:200]
        raise ConfigError(f"cannot read static catalog {root}: {reason}; repair or re-export it") from None


def _covered(geometry: BaseGeometry, job: AOIJob, root: Path) -> bool:
    cfg = job.cfg
    try:
        search.search_items(geometry, job.search_start, job.end, source=cfg.source, params=cfg.search,
                            bands=cfg.acquire.bands)
    except MonitorError:
        return False
    return True


def _swapped(geometry: BaseGeometry) -> BaseGeometry | None:
    """The geometry with x and y exchanged, when that is still a lon/lat geometry."""
    minx, miny, maxx, maxy = geometry.bounds
    if min(minx, maxx) < -90 or max(minx, maxx) > 90:
        return None
    return shapely.transform(geometry, lambda xy: xy[:, ::-1])


def _check_json_file(path: Path, *, what: str, fix: str) -> None:
    if not path.exists():
        return
    text = read_text(path, what=f"{what} file", max_bytes=MAX_JSON_BYTES, fix=fix)
    doc = load_json(text, path=path, what=f"{what} file", fix=fix)
    if not isinstance(doc, dict):
        raise ConfigError(f"{what} file {path} is not a JSON object; {fix}")


def _check_archived(folder: Path) -> None:
    """An archived bulletin: its ``manifest.json`` and ``sites.geojson`` there and readable (the
    sites earlier bulletins listed decide which sites are new, listed again, no longer listed;
    a missing file read as "no site" made every site of the next bulletin "first time")."""
    fix = f"restore the folder from a copy of the output folder, or move {folder} out of archive/"
    for name in ("manifest.json", "sites.geojson"):
        if not (folder / name).is_file():
            raise ConfigError(f"archived bulletin {folder} has no {name} (an archived bulletin holds its manifest "
                              f"and the sites it listed); {fix}")
    _check_json_file(folder / "manifest.json", what="archived", fix=fix)
    _check_sites(folder / "sites.geojson", what="archived sites file", restore=fix)


def _check_sites(path: Path, *, archived: Path | None = None, what: str = "previous sites file",
                 restore: str | None = None) -> None:
    """A ``sites.geojson`` a run reads: the folder's previous one (the site history tracking
    starts from) or an archived bulletin's."""
    if not path.exists():
        return
    if restore is None:
        restore = (
            f"restore it from {archived / 'sites.geojson'}" if archived is not None else "restore it from a backup"
        ) + " or move it away (site ids then start afresh)"
    text = read_text(path, what=what, max_bytes=64 << 20, fix=restore)
    doc = load_json(text, path=path, what=what, fix=restore)
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(features, list):
        raise ConfigError(f"{what} {path} is not a GeoJSON FeatureCollection; {restore}")
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or not props.get("site_id") or not props.get("aoi_id") or not isinstance(
            geometry, dict
        ):
            raise ConfigError(
                f"{what} {path} feature {i} lacks site_id, aoi_id or geometry; {restore}"
            )
    try:
        from .evaluate import read_sites

        read_sites(path)
    except Exception as exc:  # geopandas / pyogrio on a file that parses as JSON but not as GeoJSON
        # the reason alone: read_sites' own path and advice (for `evaluate`) were cut off mid-word
        reason = " ".join(str(exc).split()).split("; pass the sites.geojson")[0]
        reason = reason.replace(f"sites file {path}", "").strip(" :")[:200]
        raise ConfigError(f"{what} {path} cannot be read ({reason}); {restore}") from None
