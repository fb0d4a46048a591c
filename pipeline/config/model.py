"""The whole configuration: :class:`MonitorConfig`, loading, per-AOI overrides, the threshold table."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from ..errors import ConfigError, MonitorWarning
from ..limits import MAX_CONFIG_BYTES, check_gdal_options, check_memory_limit, check_scheduler_address, load_yaml
from ..limits import read_text as read_limited_text
from ..types import OPTICAL_BANDS
from ._base import _DESIGN, _param, _Section
from .classifier import ClassifierParams, FeatureParams
from .detection import DetectParams, RadarParams, SitesParams
from .imagery import AcquireParams, CompositesParams, PeriodParams, PreprocessParams, SearchParams, SourceParams
from .reporting import BulletinParams, CrosscheckParams
from .review import AssessParams, ReviewParams


class DaskParams(_Section):
    scheduler: str | None = None
    """Address of a running ``dask.distributed`` scheduler; ``None``: start a local cluster."""
    connect_timeout_s: float = _param(10.0, unit="s", source=_DESIGN, gt=0, le=600)
    """How long to keep trying to reach ``scheduler`` before the run fails (exit 2, one line
    naming it): raise it for a scheduler still starting on a busy cluster. Closing the client
    at the end of the run waits up to twice this, at least 20 s."""
    direct_to_workers: bool | None = None
    """Whether the run's process gathers each AOI's results straight from the workers
    (pickle protocol 5: the arrays' own memory on the wire) or through the scheduler (protocol
    4: each array copied into a pickle on the worker and out of it here). ``None``: straight
    from a local cluster's workers, through a ``scheduler``'s (``distributed``'s default: its
    workers may be out of this process's reach). ``true`` with a scheduler whose workers this
    process cannot reach still works: each gather first waits for the connection to fail
    (``distributed.comm.timeouts.connect``), then goes through the scheduler."""
    n_workers: int = Field(default=2, ge=1, le=256)
    """Worker processes of the local cluster."""
    threads_per_worker: int = Field(default=1, ge=1)
    """Threads per local worker (GDAL reads release the GIL)."""
    start_method: Literal["forkserver", "spawn"] = _param("forkserver", unit="method", source=_DESIGN)
    """How the local cluster starts its worker processes. ``forkserver``: one server process,
    started with the cluster, imports Dask, GDAL and the pipeline's worker modules once and
    each worker is a fork of it (:func:`pipeline.cluster.dask_client`; ``spawn`` where the
    platform has no fork server); ``spawn`` (``distributed``'s default): each worker starts a
    fresh interpreter and imports them itself. ``docs/scaling.md`` ("The local cluster") gives the
    measured difference."""
    memory_limit: str | float | None = "4GiB"
    """Memory limit per local worker: a size (``4GiB``), a fraction of the machine's memory
    (``0.5``), ``auto``, or ``null`` for none (as ``distributed.LocalCluster`` reads it)."""
    aois_in_flight: int = _param(8, unit="AOIs", source=_DESIGN, ge=1)
    """AOIs searched, fetched or computed at the same time. Their graphs go to the cluster
    together as futures and each AOI's sites are made as its results arrive; 1 runs the AOIs
    one after another. Bounds the client's memory (each AOI in flight holds its items and,
    once computed, its change rasters)."""

    @field_validator("memory_limit")
    @classmethod
    def _memory_limit(cls, v: Any) -> Any:
        return check_memory_limit(v)

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, v: str | None) -> str | None:
        return check_scheduler_address(v)


class MonitorConfig(_Section):
    """The whole run configuration (``configs/*.yaml``)."""

    source: SourceParams = SourceParams()
    aois: tuple[Path, ...] = ()
    """AOI GeoJSON files (relative to the YAML file). Overridden by ``--aoi``."""
    max_aoi_area_km2: float = _param(5000.0, unit="km²", source=_DESIGN, gt=0)
    """Largest accepted AOI (geodesic area on WGS84, km2; :func:`pipeline.aoi.read_aois`).
    Guards against a projected file read as degrees or a country outline passed by mistake;
    the shipped AOIs cover 64-160 km2."""
    participant_outline_km: float | None = _param(25.0, unit="km", source=_DESIGN, ge=0)
    """An AOI farther than this from the outline of the country its ``participant_iso3`` names
    (Natural Earth 1:110m, :mod:`pipeline.countries`) gets a warning before the run: its activity
    would be compared with that participant's declared production. 25 km: the 1:110m outlines
    draw borders to within tens of kilometres. ``None``: no check."""
    period: PeriodParams = PeriodParams()
    out_dir: Path = Path("out")
    """Output folder (relative to the YAML file). Overridden by ``--out``."""
    cache_dir: Path | None = None
    """Local cache of AOI windows; ``None``: the user cache directory (XDG)."""
    incremental: bool = _param(True, unit="on / off", source=_DESIGN)
    """Keep each AOI's per-date indices and composites in ``<cache_dir>/state`` (keyed by item
    ids and the settings that shape them) and reuse them: a re-run that adds a quarter reads
    and computes only the new dates and the composite windows they change, with the outputs
    of a full run (:mod:`pipeline.state`). Off: every run computes everything."""
    search: SearchParams = SearchParams()
    acquire: AcquireParams = AcquireParams()
    preprocess: PreprocessParams = PreprocessParams()
    composites: CompositesParams = CompositesParams()
    detect: DetectParams = DetectParams()
    radar: RadarParams = RadarParams()
    sites: SitesParams = SitesParams()
    crosscheck: CrosscheckParams = CrosscheckParams()
    features: FeatureParams = FeatureParams()
    classifier: ClassifierParams = ClassifierParams()
    bulletin: BulletinParams = BulletinParams()

    @field_validator("aois", "out_dir", "cache_dir", mode="before")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        # An empty path reads as "." (the config's folder, or where the command runs): a run
        # would write into it. Refused, as a slip rather than a choice; "." still works.
        for item in v if isinstance(v, list | tuple) else (v,):
            if isinstance(item, str) and not item.strip():
                raise ValueError("is an empty path; name a file or folder ('.' for this one)")
        return v
    assess: AssessParams = AssessParams()
    review: ReviewParams = ReviewParams()
    dask: DaskParams = DaskParams()
    gdal: tuple[tuple[str, str], ...] = (
        ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
        ("GDAL_HTTP_MAX_RETRY", "5"),
        ("GDAL_HTTP_RETRY_DELAY", "1"),
        ("GDAL_HTTP_MULTIRANGE", "YES"),
        ("GDAL_HTTP_MERGE_CONSECUTIVE_RANGES", "YES"),
        ("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif,.tiff,.TIF"),
        ("VSI_CACHE", "TRUE"),
    )
    """GDAL configuration options applied once around every read (``rasterio.Env``);
    a mapping in YAML, kept as sorted pairs so the model stays hashable."""

    @model_validator(mode="after")
    def _composite_bands_loaded(self) -> MonitorConfig:
        missing = [b for b in self.composites.bands or () if b not in self.acquire.bands]
        if missing:
            raise ValueError(
                f"composites.bands {missing} are not loaded; "
                "add them to acquire.bands or drop them from composites.bands"
            )
        return self

    @field_validator("gdal", mode="before")
    @classmethod
    def _gdal_pairs(cls, v: Any) -> Any:
        # Names, scalar values, lengths and memory sizes are checked (pipeline.limits): GDAL
        # allocates what it is told to, and rasterio.Env fails on some values with a TypeError.
        if isinstance(v, dict):
            return tuple(sorted(check_gdal_options(v).items()))
        if isinstance(v, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in v):
            return tuple(sorted(check_gdal_options(dict(v)).items()))
        return v

    @property
    def composite_bands(self) -> tuple[str, ...]:
        """Bands of the named composites: ``composites.bands``, or the optical bands loaded."""
        if self.composites.bands is not None:
            return self.composites.bands
        return tuple(b for b in self.acquire.bands if b in OPTICAL_BANDS)

    @property
    def gdal_options(self) -> dict[str, Any]:
        """GDAL options as a dict, for ``rasterio.Env(**...)`` (``GDAL_CACHEMAX`` as the
        integer rasterio requires)."""
        return {k: int(v) if k == "GDAL_CACHEMAX" and v.isdigit() else v for k, v in self.gdal}

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form without where the run writes (``out_dir``,
        ``cache_dir``): identifies the exact settings of a run, the same for the same settings
        run into another folder."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"out_dir", "cache_dir"}), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def load_config(path: str | Path, **overrides: Any) -> MonitorConfig:
    """Parse and validate a YAML config into a frozen :class:`MonitorConfig`.

    Parameters
    ----------
    path
        YAML file.
    **overrides
        Dotted keys (``period.start="2024-01-01"``, ``out_dir=...``) applied after
        parsing, as the command line does.

    Raises
    ------
    ConfigError
        One line naming the file and the YAML key at fault.
    """
    path = Path(path)
    # Size, encoding, nesting depth and aliases are checked before the YAML is built
    # (pipeline.limits): a config is untrusted input like any other file.
    text = read_limited_text(path, what="config", max_bytes=MAX_CONFIG_BYTES, fix="pass --config a YAML file")
    raw = load_yaml(text, path=path)
    if raw is None or raw == {}:
        # Most likely the wrong file: say so, since every setting then falls back silently.
        warnings.warn(f"config {path} sets nothing: every setting takes its built-in default; "
                      "check --config", MonitorWarning, stacklevel=2)
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[leaf] = value
    try:
        cfg = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against configs/monitor.yaml"
        else:
            msg = _with_hint(msg, err)
        raise ConfigError(f"{_where(path, key, overrides)}: {key}: {' '.join(msg.split())}") from None
    return _resolve_paths(cfg, path.parent)


#: What to write instead, by the start of pydantic's error type (its messages say what is wrong).
_TYPE_HINTS = (
    (("date", "datetime"), "give a date as YYYY-MM-DD"),
    (("int_",), "give a whole number"),
    (("float_",), "give a number"),
    (("bool_",), "give true or false"),
    (("tuple_", "list_"), "give a YAML list ([first, second], or one '- item' line each)"),
    (("dict_", "model_"), "give a mapping of settings (key: value lines indented under it)"),
)


def _with_hint(msg: str, err: Mapping[str, Any]) -> str:
    """``msg`` with the value given (when short) and what to write instead, for a value of the
    wrong form; other messages (ranges, our own validators) say it already."""
    hint = next((h for prefixes, h in _TYPE_HINTS if str(err["type"]).startswith(prefixes)), None)
    if hint is None:
        return msg
    value = err.get("input")
    if str(err["type"]).startswith("date") and isinstance(value, int | float) and not isinstance(value, bool):
        msg = "a number is not a date"  # pydantic reads it as a Unix time and says something else
    shown = f" (got {value!r})" if isinstance(value, str | int | float | bool) and len(repr(value)) <= 40 else ""
    return f"{msg}{shown}; {hint}"


def _where(path: Path, key: str, overrides: Mapping[str, Any]) -> str:
    """The file, and the command-line settings behind ``key`` when it (or a part of it) was
    overridden there: a value from ``--start`` is not blamed on the YAML file."""
    given = [
        f"{dotted}={value}" for dotted, value in overrides.items()
        if value is not None and (dotted == key or dotted.startswith(f"{key}.") or key.startswith(f"{dotted}."))
    ]
    return f"{path} with {', '.join(given)} from the command line" if given else str(path)


def aoi_config(cfg: MonitorConfig, overrides: Mapping[str, Any], *, where: str) -> MonitorConfig:
    """``cfg`` with one AOI's overrides of whole-section settings applied.

    Parameters
    ----------
    cfg
        The run's configuration.
    overrides
        Section name -> mapping of that section's keys (the AOI file's ``preprocess``,
        ``composites``, ``detect``, ``radar`` and ``sites`` properties); ``None`` or empty
        values are skipped.
    where
        Names the AOI in error messages (``AOI file aois/marange.geojson (aoi_id 'marange')``).

    Raises
    ------
    ConfigError
        One line naming the AOI, the ``section.key`` and the fix.

    Examples
    --------
    >>> cfg = aoi_config(MonitorConfig(), {"detect": {"threshold_method": "otsu"}}, where="AOI x")
    >>> cfg.detect.threshold_method, cfg.detect.ndvi_drop_min
    ('otsu', 0.25)
    """
    update: dict[str, Any] = {}
    for section, values in overrides.items():
        if not values:
            continue
        current = getattr(cfg, section, None)
        if not isinstance(current, _Section) or section not in AOI_OVERRIDE_SECTIONS:
            raise ConfigError(
                f"{where}: '{section}' cannot be set per AOI; use one of {', '.join(AOI_OVERRIDE_SECTIONS)}"
            )
        try:
            update[section] = type(current).model_validate({**current.model_dump(), **dict(values)})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in (section, *err["loc"]))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key; check the spelling against configs/monitor.yaml"
            raise ConfigError(f"{where}: {key}: {msg}; fix the AOI file's '{section}' property") from None
    if not update:
        return cfg
    merged = cfg.model_copy(update=update)
    try:  # cross-section rules (composites.bands within acquire.bands) still hold
        type(cfg).model_validate(merged.model_dump())
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {msg}; fix the AOI file") from None
    return merged


#: Configuration sections an AOI file may override: the one list (``pipeline.aoi`` uses it).
AOI_OVERRIDE_SECTIONS: tuple[str, ...] = ("preprocess", "composites", "detect", "radar", "sites")
#: Sections listed in the bulletin's methods annex (:func:`threshold_table`), in its order;
#: every field of these carries ``unit`` and ``source`` metadata (:func:`_param`).
THRESHOLD_SECTIONS: tuple[str, ...] = (
    "preprocess", "composites", "detect", "radar", "sites", "crosscheck", "features", "classifier"
)


class FieldMeta(TypedDict):
    """What the configuration says about one field (:func:`field_meta`)."""

    unit: str
    """Unit of the value as the bulletin prints it (``"m²"``, ``"NDVI"``, ``"on / off"``)."""
    source: str
    """Where the default comes from (citations, ``design choice``, ``judgement, not sourced``)."""
    description: str
    """The field's docstring, whitespace collapsed to single spaces."""


def field_meta(section: str, key: str) -> FieldMeta:
    """Unit, source and description of the configuration field ``section.key``.

    ``section`` is a section of :class:`MonitorConfig` (``"detect"``), or ``""`` for a
    top-level field (``max_aoi_area_km2``). Fields outside :data:`THRESHOLD_SECTIONS` may
    lack unit and source metadata: ``""`` then.

    Raises
    ------
    KeyError
        No such section or field.

    Examples
    --------
    >>> field_meta("sites", "min_area_m2")["unit"], field_meta("crosscheck", "review_robust_z_max")["source"]
    ('m²', 'Iglewicz & Hoaglin (1993)')
    """
    model = _section_model(section)
    info = model.model_fields.get(key)
    if info is None:
        raise KeyError(f"configuration section {section or '(top level)'!r} has no field {key!r}")
    unit, source = _unit_source(info)
    return {"unit": unit, "source": source, "description": _description(info)}


def field_unit(section: str, key: str) -> str:
    """Unit of the configuration field ``section.key`` (see :func:`field_meta`).

    Examples
    --------
    >>> field_unit("detect", "regrowth_ndvi_margin")
    'NDVI'
    """
    return field_meta(section, key)["unit"]


def threshold_table(cfg: MonitorConfig) -> list[dict[str, Any]]:
    """Every field of :data:`THRESHOLD_SECTIONS` with its value, unit, description and source.

    One row per field, sections in :data:`THRESHOLD_SECTIONS` order, fields in declaration
    order: ``{"section", "key", "value", "default", "unit", "description", "source"}``. ``value``
    is the configured value and ``default`` the field's default (paths as ``str``), ``description``
    the field docstring with whitespace
    collapsed; ``unit`` and ``source`` come from the field metadata (the bulletin's methods
    annex prints them as they are).

    Examples
    --------
    >>> row = next(r for r in threshold_table(MonitorConfig()) if r["key"] == "gravel_thickness_m")
    >>> row["section"], row["value"], row["unit"], row["source"]
    ('crosscheck', (0.5, 2.0), 'm', 'illustrative default, not sourced')
    """
    rows: list[dict[str, Any]] = []
    for section in THRESHOLD_SECTIONS:
        model = getattr(cfg, section)
        for key, info in type(model).model_fields.items():
            value = getattr(model, key)
            unit, source = _unit_source(info)
            default = info.get_default(call_default_factory=True)
            rows.append({
                "section": section,
                "key": key,
                "value": str(value) if isinstance(value, Path) else value,
                "default": str(default) if isinstance(default, Path) else default,
                "unit": unit,
                "description": _description(info),
                "source": source,
            })
    return rows


def _section_model(section: str) -> type[BaseModel]:
    if section == "":
        return MonitorConfig
    info = MonitorConfig.model_fields.get(section)
    model = info.annotation if info is not None else None
    if not (isinstance(model, type) and issubclass(model, _Section)):
        raise KeyError(f"no configuration section {section!r}")
    return model


def _unit_source(info: FieldInfo) -> tuple[str, str]:
    extra = info.json_schema_extra
    if not isinstance(extra, dict):
        return "", ""
    return str(extra.get("unit", "")), str(extra.get("source", ""))


def _description(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def _resolve_paths(cfg: MonitorConfig, base: Path) -> MonitorConfig:
    def rel(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    update: dict[str, Any] = {
        "aois": tuple(rel(p) for p in cfg.aois),
        "out_dir": rel(cfg.out_dir),
    }
    if cfg.cache_dir is not None:
        update["cache_dir"] = rel(cfg.cache_dir)
    table_paths = {
        key: rel(getattr(cfg.crosscheck, key))
        for key in ("declared_production", "trade_statistics", "sanctions_windows")
        if getattr(cfg.crosscheck, key) is not None
    }
    if table_paths:
        update["crosscheck"] = cfg.crosscheck.model_copy(update=table_paths)
    url = cfg.source.url
    if "://" not in url and not Path(url).is_absolute():
        update["source"] = cfg.source.model_copy(update={"url": str(rel(Path(url)))})
    radar_url = cfg.radar.source_url
    if radar_url is not None and "://" not in radar_url and not Path(radar_url).is_absolute():
        update["radar"] = cfg.radar.model_copy(update={"source_url": str(rel(Path(radar_url)))})
    if cfg.detect.site_model is not None:
        update["detect"] = cfg.detect.model_copy(update={"site_model": rel(cfg.detect.site_model)})
    if cfg.review.register_path is not None:
        update["review"] = cfg.review.model_copy(update={"register_path": rel(cfg.review.register_path)})
    return cfg.model_copy(update=update)
