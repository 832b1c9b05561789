"""Control characters are refused where input arrives, once for every route (issue 17, finding 10).

A NUL byte cannot be stored in PostgreSQL's text and would fail a query deep inside a service
with a server error; other control characters (escape sequences, backspaces) have no place in
anything a person types either. Rather than cleaning each field on its own, the app looks at
every query value, path parameter, form field (names and values) and JSON string before a
handler runs, and answers 400 with a message naming the field. Tabs and line breaks are text.
Uploaded files are not read here: the import checks its own rows.

A route may declare `opt={"cleans_control_characters": True}` for its form body: the visitor's
check-in form does (kiosk/), because its validation already removes control characters from
every field it keeps and answers each field's mistake next to it, so that a visitor who pasted
one loses nothing they typed (an error page here would lose the whole form).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException

from nightreg.i18n import N_

MSG_CONTROL_CHARACTER = N_(
    "The text contains a control character (such as a NUL byte) that cannot be stored. "
    "Please remove it and try again."
)
_TEXT_CONTROLS = frozenset("\t\n\r")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class ControlCharacterRefused(ClientException):
    """400: a field holds a control character; `field` names it (as the API's errors do)."""

    def __init__(self, field: str) -> None:
        super().__init__(
            detail=MSG_CONTROL_CHARACTER,
            extra=[{"key": field, "message": "contains a control character"}],
        )
        self.field = field


def has_control_character(text: str) -> bool:
    if text.isprintable():  # the usual case, at C speed: no control character at all
        return False
    return any(unicodedata.category(c) == "Cc" and c not in _TEXT_CONTROLS for c in text)


async def refuse_control_characters(request: Request[Any, Any, Any]) -> None:
    """Raise ControlCharacterRefused for the first field of the request that holds one."""
    for name, value in _fields(request.query_params.multi_items()):
        _check(name, value)
    for name, value in request.path_params.items():
        _check(name, value)
    if request.method not in _BODY_METHODS:
        return
    content_type, _options = request.content_type
    if content_type.endswith("json"):
        try:
            document = msgspec.json.decode(await request.body())  # kept for the handler
        except (msgspec.DecodeError, RecursionError):
            return  # the handler refuses what is not JSON, in the API's error shape
        for name, value in _json_strings(document, "body"):
            _check(name, value)
    elif (
        content_type in _FORMS
        and not request.url.path.startswith("/api/")
        and not request.route_handler.opt.get("cleans_control_characters")
    ):
        # The CSRF check has parsed the form already (the handler reads the same parse). The
        # API takes JSON only: a form sent there is left unread for the handler to refuse.
        for name, value in _fields((await request.form()).multi_items()):
            _check(name, value)


def _fields(items: Any) -> Iterator[tuple[str, Any]]:
    for name, value in items:
        _check(name, name)
        yield name, value


def _check(name: str, value: Any) -> None:
    if isinstance(value, str) and has_control_character(value):
        raise ControlCharacterRefused(name if not has_control_character(name) else "?")


def _json_strings(value: Any, name: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON document (keys too), with the top-level key it sits under."""
    stack: list[tuple[Any, str]] = [(value, name)]
    while stack:  # no recursion: a document nested thousands deep is the handler's to refuse
        item, under = stack.pop()
        if isinstance(item, str):
            yield under, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                field = key if under == name else under
                yield field, key
                stack.append((inner, field))
        elif isinstance(item, list):
            stack.extend((inner, under) for inner in item)
