"""Typed, frozen configuration: ``load_config(path) -> MonitorConfig``.

The YAML is parsed once (in ``run.py`` or the first notebook cell) into frozen
pydantic models. Every field has a docstring that says what it does and where its
default comes from. The fields of the sections the bulletin's methods annex lists
(:data:`THRESHOLD_SECTIONS`) also carry their unit and source as field metadata
(``json_schema_extra``; :func:`field_meta`, :func:`threshold_table`). Stage functions receive only their own
section (``params: DetectParams``) or plain keyword arguments, never the whole
config. Unknown keys are rejected, and every validation error is reported as
one line naming the YAML key (``detect.ndvi_drop_min``) and the file.

Relative paths in the YAML are resolved against the directory of the YAML file.
Secrets never live here: they come from environment variables (see
``pipeline.search``).
"""

from __future__ import annotations

from ._base import (  # noqa: F401
    _DESIGN,
    _ILLUSTRATIVE,
    _JUDGEMENT,
    _ROW_SOURCES,
    _param,
    _Section,
)
from .classifier import (  # noqa: F401
    CalibrationMethod,
    ClassifierParams,
    FeatureParams,
)
from .detection import (  # noqa: F401
    DetectParams,
    RadarParams,
    RadarRole,
    SitesParams,
    SpeckleFilter,
)
from .imagery import (  # noqa: F401
    AcquireParams,
    CompositeMethod,
    CompositeProduct,
    CompositesParams,
    PeriodParams,
    PreprocessParams,
    SearchParams,
    SourceParams,
    ThresholdMethod,
)
from .model import (  # noqa: F401
    AOI_OVERRIDE_SECTIONS,
    THRESHOLD_SECTIONS,
    DaskParams,
    FieldMeta,
    MonitorConfig,
    _description,
    _resolve_paths,
    _section_model,
    _unit_source,
    aoi_config,
    field_meta,
    field_unit,
    load_config,
    threshold_table,
)
from .reporting import (  # noqa: F401
    BulletinParams,
    CrosscheckParams,
)
from .review import AssessParams, ReviewParams  # noqa: F401

__all__ = [
    "AOI_OVERRIDE_SECTIONS",
    "AcquireParams",
    "AssessParams",
    "BulletinParams",
    "CalibrationMethod",
    "ClassifierParams",
    "CompositeMethod",
    "CompositeProduct",
    "CompositesParams",
    "CrosscheckParams",
    "DaskParams",
    "DetectParams",
    "FeatureParams",
    "FieldMeta",
    "MonitorConfig",
    "PeriodParams",
    "PreprocessParams",
    "RadarParams",
    "ReviewParams",
    "RadarRole",
    "SearchParams",
    "SitesParams",
    "SourceParams",
    "SpeckleFilter",
    "THRESHOLD_SECTIONS",
    "ThresholdMethod",
    "aoi_config",
    "field_meta",
    "field_unit",
    "load_config",
    "threshold_table",
]
