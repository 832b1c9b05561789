"""A file the browser saves: in one piece, or an export streamed after its first chunk.

The services' exports are async generators that check the caller's rights and write the audit
before they yield their first chunk. Reading that chunk before the response starts lets a
refusal still become a page (or a 403) instead of a broken download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Response
from litestar.response import Stream

CSV = "text/csv; charset=utf-8"
JSON = "application/json"


def attachment(filename: str, *, private: bool = False) -> dict[str, str]:
    """The header that has the browser save the answer as `filename`; `private`: and keep no
    copy of it in any cache (a person's data, a point's key)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if private:
        headers["Cache-Control"] = "no-store"
    return headers


def download(
    content: bytes | str | dict[str, Any],
    filename: str,
    media_type: str = CSV,
    *,
    private: bool = False,
) -> Response[Any]:
    """A file made in one piece (a dict is sent as JSON), saved as `filename`."""
    return Response(content, media_type=media_type, headers=attachment(filename, private=private))


async def export_stream(
    chunks: AsyncIterator[bytes], filename: str, *, fmt: str = "csv", media_type: str | None = None
) -> Stream:
    """The export as the service yields it; its refusal is raised here, before the first byte."""
    first = await anext(chunks)

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    media_type = media_type or (CSV if fmt == "csv" else JSON)
    return Stream(body(), media_type=media_type, headers=attachment(filename))
