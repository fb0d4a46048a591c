"""Languages of the bulletin: gettext catalogs (Babel ``.po`` files) and the current language.

The bulletin is written in English; each other language has a catalog
``locale/<lang>/LC_MESSAGES/bulletin.po`` next to this module, compiled in memory at first use
(:mod:`babel.messages`), so no binary ``.mo`` is kept in the repository. The template
(``jinja2.ext.i18n``) and the sentences written in Python (:func:`_`, :func:`ngettext`) look
their words up in the catalog of the current language, set with :func:`use_language`.

Placeholders are named (``{n}``, ``{name}``) in Python strings and ``%(name)s`` in the
template, so a translation may reorder them. A message missing from a catalog prints in
English (gettext's fallback); ``tests/test_bulletin.py`` checks the French catalog is complete.
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext
import io
from collections.abc import Iterator
from functools import cache
from pathlib import Path

__all__ = ["LANGUAGES", "LOCALE_DIR", "N_", "_", "babel_locale", "catalog", "current", "ngettext", "use_language"]

#: Languages the bulletin can be written in (the first is the source language).
LANGUAGES: tuple[str, ...] = ("en", "fr")
#: Folder of the ``.po`` catalogs (package data).
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "bulletin"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("bulletin_language", default="en")


@cache
def catalog(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (``NullTranslations`` for English)."""
    if language == "en":
        return gettext.NullTranslations()
    if language not in LANGUAGES:
        raise ValueError(f"no bulletin catalog for language {language!r} (known: {', '.join(LANGUAGES)})")
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fh:
        messages = read_po(fh, locale=language, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, messages, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def current() -> str:
    """The language the bulletin is being written in."""
    return _current.get()


@contextlib.contextmanager
def use_language(language: str) -> Iterator[None]:
    """Write in ``language`` inside the ``with`` block (a context variable: thread-safe)."""
    catalog(language)  # unknown languages fail here, before anything is written
    token = _current.set(language)
    try:
        yield
    finally:
        _current.reset(token)


def babel_locale() -> str:
    """Babel locale name of the current language (number and date formats)."""
    return {"en": "en_GB", "fr": "fr_FR"}.get(current(), current())


def _(message: str, **params: object) -> str:
    """``message`` in the current language, its ``{name}`` placeholders filled from ``params``."""
    text = catalog(current()).gettext(message)
    return text.format(**params) if params else text


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it (tables built at import)."""
    return message


def ngettext(singular: str, plural: str, n: int, **params: object) -> str:
    """Singular or plural of a message by ``n`` (the language's plural rule); ``{n}`` is filled too."""
    text = catalog(current()).ngettext(singular, plural, n)
    return text.format(n=n, **params)
