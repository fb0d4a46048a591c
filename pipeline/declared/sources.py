"""PURE: what kind of publisher a figure's source is, and which sources a bulletin may not cite.

A declared figure is only as good as the page it was read from. The primary publishers are
the Kimberley Process's own sites (its statistics site and its documents), the United
Nations' document sites and government sites; trade-press and portal pages are secondary
copies of them. Two kinds are refused outright, wherever the bulletin would cite them:

- **staging** hosts (``dev.``, ``staging.``, ``preview``, sandbox servers): a page that is not
  yet, or no longer, published, which a reader cannot check;
- **blogs**: pages whose publisher is unknown.

:func:`source_kind` classifies a source string (a URL or free text); :func:`source_problem`
says why a source is refused, or ``None``. The readers reject rows with a refused source
(:func:`pipeline.declared.validate_declared`), and a test checks the shipped tables.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Literal

__all__ = ["SourceKind", "source_kind", "source_kind_label", "source_problem"]

SourceKind = Literal["kp", "un", "government", "secondary", "staging", "blog", "synthetic", "none"]

#: Hosts of the Kimberley Process (statistics site, documents site).
_KP_HOSTS = ("kimberleyprocess.com", "kimberleyprocessstatistics.org")
#: Hosts of United Nations documents.
_UN_HOSTS = ("un.org", "undocs.org", "digitallibrary.un.org", "documents.un.org")
#: Blog platforms and blogs found among the reference tables' sources.
_BLOG_HOSTS = ("roughdiamondbuyers.com", "blogspot.com", "wordpress.com", "over-blog.com", "medium.com",
               "substack.com", "tumblr.com")
#: Host labels of unpublished copies of a site.
_STAGING_LABELS = frozenset({"dev", "staging", "stage", "test", "preview", "sandbox", "uat", "preprod"})
_STAGING_PARTS = re.compile(r"preview-server|sandbox|staging")
_GOVERNMENT = re.compile(r"(^|\.)(gov|gouv|gob|govt)(\.[a-z]{2})?$")


def source_kind(source: str) -> SourceKind:
    """The kind of publisher of ``source`` (a URL; free text is ``synthetic`` when it says so,
    else ``none``).

    >>> [source_kind(s) for s in ("https://www.kimberleyprocess.com/en/x", "http://roughdiamondbuyers.com/?paged=2",
    ...  "https://www.dev.economie-ivoirienne.ci/a.html", "https://naturaldiamonds.com/x", "https://press.un.org/x",
    ...  "synthetic (demonstration scenario)")]
    ['kp', 'blog', 'staging', 'secondary', 'un', 'synthetic']
    """
    text = str(source or "").strip()
    if text.lower().startswith("synthetic"):
        return "synthetic"
    host = (urllib.parse.urlsplit(text).hostname or "").lower().rstrip(".")
    if not host:
        return "none"
    labels = host.split(".")
    if _STAGING_LABELS & set(labels[:-1]) or _STAGING_PARTS.search(host):
        return "staging"
    if _matches(host, _BLOG_HOSTS) or labels[0] == "blog":
        return "blog"
    if _matches(host, _KP_HOSTS):
        return "kp"
    if _matches(host, _UN_HOSTS):
        return "un"
    if _GOVERNMENT.search(host):
        return "government"
    return "secondary"


def source_problem(source: str) -> str | None:
    """Why ``source`` may not be cited (a staging host or a blog), else ``None``.

    >>> source_problem("https://www.dev.economie-ivoirienne.ci/p.html")
    'source www.dev.economie-ivoirienne.ci is a staging copy of a site, not a published page; cite the published page'
    >>> source_problem("https://naturaldiamonds.com/x") is None
    True
    """
    kind = source_kind(source)
    host = urllib.parse.urlsplit(str(source).strip()).hostname or ""
    if kind == "staging":
        return f"source {host} is a staging copy of a site, not a published page; cite the published page"
    if kind == "blog":
        return f"source {host} is a blog; cite the publisher of the figure (KP statistics, national authority, UN)"
    return None


def source_kind_label(kind: SourceKind) -> str:
    """How the bulletin names a kind of source.

    >>> source_kind_label("secondary")
    'secondary copy (press or portal)'
    """
    return {
        "kp": "primary: Kimberley Process",
        "un": "primary: United Nations",
        "government": "primary: government",
        "secondary": "secondary copy (press or portal)",
        "synthetic": "synthetic (demonstration)",
        "staging": "refused: staging site",
        "blog": "refused: blog",
        "none": "no URL",
    }[kind]


def _matches(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
