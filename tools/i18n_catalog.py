"""Extract the bulletin's messages and update its gettext catalogs (``.po``).

Run after changing a message in ``pipeline/bulletin`` (Python ``_()``/``ngettext()``/``N_()``
or the template's ``{% trans %}``/``_()``)::

    python tools/i18n_catalog.py          # update pipeline/bulletin/locale/*/LC_MESSAGES/bulletin.po
    python tools/i18n_catalog.py --check  # exit 1 if a message is missing or untranslated

New messages appear with an empty ``msgstr`` for the translator; messages no longer used are
dropped. The ``.po`` files are compiled in memory at run time (:mod:`pipeline.bulletin.i18n`).

Besides the package's own messages, the catalog holds what the methods annex quotes from the
configuration (:func:`pipeline.config.threshold_table`): each parameter's meaning (the first
sentence of its field docstring, as the annex prints it), its unit and the shared source labels
(``design choice``...), and the per-AOI rows' wording in ``pipeline/outputs.py``. Changing a
field docstring therefore asks for its translation here too.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the configuration's messages come from this checkout's package
PACKAGE = ROOT / "pipeline" / "bulletin"
LOCALE = PACKAGE / "locale"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "gettext": None}
METHODS = [("**.py", "python"), ("**/templates/**.j2", "jinja2")]
OPTIONS = {"**/templates/**.j2": {"trimmed": "true", "extensions": "jinja2.ext.i18n"}}


def template_catalog() -> Catalog:
    """Every message of the bulletin package, with where it occurs."""
    pot = Catalog(project="kp-monitor-pipeline bulletin", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), method_map=METHODS, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
    ):
        pot.add(message, None, [(f"pipeline/bulletin/{filename}", lineno)], auto_comments=comments, context=context)
    outputs = ROOT / "pipeline" / "outputs.py"
    for lineno, message, comments, context in extract_from_file("python", str(outputs), keywords=KEYWORDS):
        pot.add(message, None, [("pipeline/outputs.py", lineno)], auto_comments=comments, context=context)
    for message, where, comment in config_messages():
        if message and pot.get(message) is None:
            pot.add(message, None, [(where, None)], auto_comments=[comment])
    return pot


def config_messages() -> list[tuple[str, str, str]]:
    """``(message, file, comment)``: the meanings, units and shared source labels the methods
    annex quotes from the configuration (see the module's docstring)."""
    from pipeline.bulletin.annex import _first_sentence
    from pipeline.config import MonitorConfig, _base, threshold_table

    cfg = MonitorConfig()
    shared = {_base._DESIGN, _base._JUDGEMENT, _base._ILLUSTRATIVE, _base._ROW_SOURCES}
    out = []
    for row in threshold_table(cfg):
        model = type(getattr(cfg, row["section"]))
        where = Path(inspect.getsourcefile(model) or "").resolve().relative_to(ROOT).as_posix()
        key = f"{row['section']}.{row['key']}"
        out.append((_first_sentence(row["description"]), where, f"meaning of {key} (methods annex)"))
        out.append((row["unit"], where, f"unit of {key}"))
        if row["source"] in shared:
            out.append((row["source"], "pipeline/config/_base.py", "source label"))
        # Worded parts of a compound source ("Breiman 2001; measured on make validate"); the
        # annex translates each part (citations, capitalised, print as given).
        for part in (p.strip() for p in str(row["source"] or "").split(";")):
            if part and part[:1].islower() and part not in shared:
                out.append((part, where, f"part of the source of {key}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report missing translations, write nothing")
    args = parser.parse_args(argv)
    pot = template_catalog()
    status = 0
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/bulletin.po")):
        with po_path.open("rb") as fh:
            po = read_po(fh)
        po.update(pot, no_fuzzy_matching=True)
        missing = [m.id for m in po if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string))
                                                 or m.fuzzy)]
        for m in missing:
            print(f"{po_path.relative_to(ROOT)}: untranslated: {m!r}", file=sys.stderr)
        status |= bool(missing)
        if not args.check:
            po.obsolete.clear()
            with po_path.open("wb") as fh:
                write_po(fh, po, width=100, sort_output=False, omit_header=False, include_previous=False)
    return status if args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
