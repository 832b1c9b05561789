"""A file the browser saves: its header, and an export streamed after its first chunk.

The services' exports are async generators that check the caller's rights and write the audit
before they yield their first chunk. Reading that chunk before the response starts lets a
refusal still become a page (or a 403) instead of a broken download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.response import Stream

CSV = "text/csv; charset=utf-8"
JSON = "application/json"


def attachment(filename: str) -> dict[str, str]:
    """The header that has the browser save the answer as `filename`."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def export_stream(
    first: bytes, rest: AsyncIterator[bytes], filename: str, *, fmt: str = "csv"
) -> Stream:
    """The export's first chunk (already read), then the rest as the service yields it."""

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in rest:
            yield chunk

    return Stream(body(), media_type=CSV if fmt == "csv" else JSON, headers=attachment(filename))
