"""PDF rendering of the report HTML with WeasyPrint, with every URL fetch refused except ``data:``.

WeasyPrint fetches URLs by default (``file://`` included), so untrusted text that ever became an
``<img>`` or stylesheet link could embed a local file into the PDF. The report HTML is autoescaped
and self-contained; the fetcher below is the second lock: only ``data:`` URIs (the figures) load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ALLOWED_SCHEMES = frozenset({"data"})


def _scheme(url: str) -> str:
    head, sep, _ = str(url).partition(":")
    return head.strip().lower() if sep else ""


def locked_url_fetcher() -> Any:
    """A WeasyPrint URL fetcher that refuses every URL whose scheme is not ``data``.

    Refused URLs are recorded in ``.refused`` (useful to tests and to diagnose a broken figure).
    """
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # WeasyPrint < 70: fetchers are plain functions
        return _legacy_fetcher()

    class LockedURLFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=set(ALLOWED_SCHEMES), allow_redirects=False, timeout=5)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            if _scheme(url) not in ALLOWED_SCHEMES:
                self.refused.append(str(url))
                raise ValueError(f"auditor refuses to fetch {str(url)[:80]!r}: only data: URIs are allowed")
            return super().fetch(url, headers)

    return LockedURLFetcher()


def render_pdf(html: str, target: Path, *, url_fetcher: Any = None) -> Path:
    """Write ``html`` as a PDF to ``target``. Nothing outside the document is ever read."""
    from weasyprint import HTML

    fetcher = url_fetcher if url_fetcher is not None else locked_url_fetcher()
    document = HTML(string=html, base_url=None, url_fetcher=fetcher)
    document.write_pdf(target)
    return target


def _legacy_fetcher() -> Any:
    from weasyprint import default_url_fetcher

    refused: list[str] = []

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        if _scheme(url) not in ALLOWED_SCHEMES:
            refused.append(str(url))
            raise ValueError(f"auditor refuses to fetch {str(url)[:80]!r}: only data: URIs are allowed")
        return default_url_fetcher(url, *args, **kwargs)

    fetch.refused = refused  # type: ignore[attr-defined]  # read by tests, as on the class-based fetcher
    return fetch
