"""HTML to PDF with WeasyPrint, fetching nothing but data: URIs.

Templates may be user-supplied, so the URL fetcher refuses file:// (local files such as the
mounted secrets) and network URLs; images such as the logo are embedded as data: URIs. When
WeasyPrint or its native libraries (Pango, HarfBuzz) cannot be loaded, PdfUnavailable says why
and the caller falls back to the text rendering.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class PdfUnavailable(Exception):
    """WeasyPrint cannot be used here; the message is the reason shown in the text banner."""


def _weasyprint() -> Any:
    # Refused fetches become warnings (a missing image), not a failed report; and WeasyPrint
    # parses its default stylesheets at import, logging each step at INFO into the pod's log.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    try:
        import weasyprint
    except (ImportError, OSError) as error:  # OSError: a native library failed to load
        raise PdfUnavailable(f"{type(error).__name__}: {error}") from error
    return weasyprint


def check_available() -> None:
    """Raise PdfUnavailable now rather than after the data has been loaded."""
    _weasyprint()


@dataclass(frozen=True)
class EmbeddedFile:
    """A file inside the PDF, associated with the whole document (PDF/A-3's AF, relationship
    Data: the rows the report was made from)."""

    name: str
    content: bytes
    description: str


def render_pdf(html: str) -> bytes:
    return render_pdf_pages(html)[0]


def render_pdf_pages(
    html: str, *, variant: str | None = None, embedded: Sequence[EmbeddedFile] = ()
) -> tuple[bytes, int]:
    """The PDF and its page count (for the delivery record). `variant` is WeasyPrint's
    pdf_variant (pdf/a-3b, pdf/ua-1); PDF/UA needs the structure tags, so they are written."""
    weasyprint = _weasyprint()
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=("data",), allow_redirects=False, timeout=5)
    document = weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).render()
    attachments = [
        weasyprint.Attachment(
            string=item.content,
            name=item.name,
            description=item.description,
            relationship="Data",
        )
        for item in embedded
    ]
    options: dict[str, Any] = {"attachments": attachments or None}
    if variant:
        options.update(pdf_variant=variant, pdf_tags=variant.startswith("pdf/ua"))
    return document.write_pdf(**options), len(document.pages)
