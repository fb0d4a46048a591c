"""Extract the bulletin's messages and update its gettext catalogs (``.po``).

Run after changing a message in ``pipeline/bulletin`` (Python ``_()``/``ngettext()``/``N_()``
or the template's ``{% trans %}``/``_()``)::

    python tools/i18n_catalog.py          # update pipeline/bulletin/locale/*/LC_MESSAGES/bulletin.po
    python tools/i18n_catalog.py --check  # exit 1 if a message is missing or untranslated

New messages appear with an empty ``msgstr`` for the translator; messages no longer used are
dropped. The ``.po`` files are compiled in memory at run time (:mod:`pipeline.bulletin.i18n`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
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
    return pot


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
