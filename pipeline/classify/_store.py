"""Files of a model folder: atomic writes, the card, and a skops load that trusts only scikit-learn and NumPy."""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from sklearn.calibration import CalibratedClassifierCV

__all__ = [
    "CARD_FILE", "CARD_MD", "FORMAT", "MODEL_FILE",
    "load_estimator", "read_card", "short", "software", "spec_diff", "swap_in",
]

MODEL_FILE, CARD_FILE, CARD_MD = "model.skops", "model_card.json", "MODEL_CARD.md"
#: Identifies a card written by this package, and its layout.
FORMAT = {"format": "kp-site-model", "format_version": 1}
_TRUSTED_PREFIXES = ("sklearn.", "numpy.")


def load_estimator(blob: bytes, d: Path) -> CalibratedClassifierCV:
    import skops.io  # with scikit-learn, about 1.5 s to import: only where a model is loaded or saved
    from sklearn.calibration import CalibratedClassifierCV

    try:
        untrusted = skops.io.get_untrusted_types(data=blob)
    except Exception as exc:  # skops raises assorted errors on a malformed archive
        raise ConfigError(f"model {d}: {MODEL_FILE} is not a readable skops file ({exc}); retrain") from None
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise ConfigError(
            f"model {d}: {MODEL_FILE} contains types other than scikit-learn's and NumPy's ({short(foreign)}); "
            "refusing to load it: retrain the model with `python -m pipeline train`"
        )
    try:
        estimator = skops.io.loads(blob, trusted=untrusted)
    except Exception as exc:  # as above: any failure here means an unusable file
        raise ConfigError(f"model {d}: cannot load {MODEL_FILE} ({exc}); retrain") from None
    if not isinstance(estimator, CalibratedClassifierCV):
        raise ConfigError(f"model {d}: {MODEL_FILE} holds a {type(estimator).__name__}, not a site classifier")
    return estimator


def read_card(d: Path) -> dict[str, Any]:
    try:
        card = json.loads((d / CARD_FILE).read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(f"no {CARD_FILE} in {d}; pass a folder written by `python -m pipeline train`") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model {d}: {CARD_FILE} is not valid JSON ({exc.msg}); retrain or restore it") from None
    if not isinstance(card, dict) or {k: card.get(k) for k in FORMAT} != FORMAT:
        raise ConfigError(f"model {d}: {CARD_FILE} is not a site-model card of format version 1; retrain")
    return card


def swap_in(tmp: Path, target: Path) -> None:
    """Rename the finished folder into place; an old model folder is moved aside first."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def software() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("scikit-learn", "numpy", "scipy", "pandas", "skops"):
        out[pkg] = version(pkg)
    return out


def short(names: list[str], n: int = 5) -> str:
    """A list for a one-line message: the first ``n`` names, then how many more."""
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return "[" + ", ".join(names[:n]) + "]" + more


def spec_diff(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings on which two feature specs differ (feature version and names included)."""
    a = {**old.get("params", {}), "feature_version": old.get("feature_version")}
    b = {**new.get("params", {}), "feature_version": new.get("feature_version")}
    if old.get("feature_names") != new.get("feature_names"):
        a["feature_names"] = f"{len(old.get('feature_names', []))} names"
        b["feature_names"] = f"{len(new.get('feature_names', []))} names"
        if a["feature_names"] == b["feature_names"]:
            a["feature_names"], b["feature_names"] = "other names", "other names"
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}
