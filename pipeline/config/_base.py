"""The base of every configuration section: frozen models whose fields carry unit and source."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Sources shared by many fields (:func:`_param`): the value is reasoned in the docstring; the
#: docstring says the value is judgement / an illustrative default; the CSV rows carry theirs.
_DESIGN = "design choice"
_JUDGEMENT = "judgement, not sourced"
_ILLUSTRATIVE = "illustrative default, not sourced"
_ROW_SOURCES = "each row carries its own source (see Sources of declared figures)"


def _param(default: Any, *, unit: str, source: str, **constraints: Any) -> Any:
    """A pydantic ``Field`` carrying its unit and source (``json_schema_extra``).

    ``unit``: the unit the value is in, as the bulletin prints it (``"m²"``, ``"NDVI"``,
    ``"on / off"``); ``source``: where the default comes from (citations, ``design choice``,
    ``judgement, not sourced``). ``constraints`` go to ``Field`` (``ge``, ``le``, ...).
    """
    return Field(default=default, json_schema_extra={"unit": unit, "source": source}, **constraints)


class _Section(BaseModel):
    """Frozen, strict base: unknown keys are errors, field docstrings are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    def __dask_tokenize__(self) -> str:
        # Frozen models are values: two equal configs give the same Dask token.
        return type(self).__name__ + self.model_dump_json()
