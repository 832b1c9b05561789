"""What every part of the JSON API shares: the error shapes and their OpenAPI descriptions.

admin/api/v1.py and admin/api/signals.py both use these; v1.py includes signals at import
time, so they live here rather than in either of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_429_TOO_MANY_REQUESTS

HTTP_422 = 422

# The dates a period may name: the services turn them into local midnights in UTC, which do
# not exist for the first and the last days Python knows.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(9998, 12, 31)
MSG_DATE_RANGE = "Please send a date from 1900-01-01 to 9998-12-31."

_NOT_FOUND = "No such site or visit, or not one of the token's sites"

# The query parameters under their API names (the services name the dates date_from/date_to).
QUERY_FIELDS = {"date_from": "from", "date_to": "to"}


def invalid_example(summary: str, field: str, message: str) -> Example:
    """An example of the 422 answer for the OpenAPI schema: one field at fault."""
    value = {"code": "invalid", "message": message, "field": field, "errors": {field: message}}
    return Example(summary=summary, value=value)


_INVALID_EXAMPLE = invalid_example("A field missing", "guest_name", "Please enter your name.")


def doc(description: str, *examples: Any) -> msgspec.Meta:
    """A field's description (and examples) for the OpenAPI schema."""
    schema: dict[str, Any] = {"description": description}
    if examples:
        schema["examples"] = list(examples)
    return msgspec.Meta(extra_json_schema=schema)


class ApiError(msgspec.Struct):
    """Every error the API answers: a stable code, a message for people, the field at fault."""

    code: Annotated[
        str, doc("Stable, snake_case: unauthorized, forbidden, not_found, invalid, rate_limited")
    ]
    message: str
    field: str | None = None


class InvalidError(msgspec.Struct):
    """A request that does not validate: the first problem, and every problem by field."""

    code: Annotated[str, doc("Always `invalid`", "invalid")]
    message: str
    field: str | None
    errors: dict[str, str]


# Row ids are 32-bit integers in PostgreSQL: a larger number names no row (and must not reach
# the database, which refuses it as a parameter instead of finding nothing).
MAX_ROW_ID = 2**31 - 1


def row_id(value: int) -> int:
    """A path's id as a row id; a 404 for a number no row can have."""
    if not 0 < value <= MAX_ROW_ID:
        raise NotFoundException()
    return value


def check_dates(dates: Mapping[str, date | None]) -> None:
    """A 422 naming the query parameter whose date lies outside what a period can be."""
    for name, value in dates.items():
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise ValidationException(
                detail="Validation failed", extra=[{"key": name, "message": MSG_DATE_RANGE}]
            )


def invalid(errors: Mapping[str, str]) -> Response[InvalidError]:
    """A 422 naming every field at fault (the first one also as `field`)."""
    field, message = next(iter(errors.items()))
    return Response(
        InvalidError(code="invalid", message=message, field=field, errors=dict(errors)),
        status_code=HTTP_422,
    )


def errors(
    *statuses: int, not_found: str = _NOT_FOUND, invalid_example: Example = _INVALID_EXAMPLE
) -> dict[int, ResponseSpec]:
    """The error answers a route documents, in the shapes above."""
    described = {
        400: (
            "The request cannot be read (a body that is not JSON, for instance), or a value "
            "holds a control character such as NUL"
        ),
        401: "No bearer token, or one that is unknown, expired or revoked",
        403: "The token's role may not do this",
        404: not_found,
        422: "The request does not validate",
        429: (
            "Over the token's rate limit (NIGHTREG_API_RATE_PER_TOKEN requests a minute, "
            "counted across all instances): code `rate_limited`; send again after the seconds "
            "in the Retry-After header"
        ),
    }
    specs = {
        status: ResponseSpec(ApiError, description=described[status], generate_examples=False)
        for status in statuses
        if status != HTTP_422
    }
    # Any request can be unreadable or hold a control character (refused before the route
    # runs, nightreg.web.control_characters); Litestar's own 400 has another shape.
    specs[HTTP_400_BAD_REQUEST] = ResponseSpec(
        ApiError, description=described[HTTP_400_BAD_REQUEST], generate_examples=False
    )
    # Any request with a valid token counts against its rate limit.
    if 401 in statuses:
        specs[HTTP_429_TOO_MANY_REQUESTS] = ResponseSpec(
            ApiError, description=described[HTTP_429_TOO_MANY_REQUESTS], generate_examples=False
        )
    if HTTP_422 in statuses:
        specs[HTTP_422] = ResponseSpec(
            InvalidError,
            description=described[HTTP_422],
            generate_examples=False,
            examples=[invalid_example],
        )
    return specs


def validation_failed(
    body_field: re.Pattern[str],
) -> Callable[[Request[Any, Any, Any], ValidationException], Response[Any]]:
    """A handler for Litestar's own checks of parameters and bodies: a 422 naming the field.

    A body's problem is Litestar's about "data" as a whole; where `body_field` finds a field
    named in its message, the 422 names that field instead. Without a named field, a 400.
    """

    def handler(_request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
        problems = exc.extra if isinstance(exc.extra, list) else []
        found: dict[str, str] = {}
        for problem in problems:
            if not isinstance(problem, dict) or not problem.get("key"):
                continue
            message = str(problem.get("message") or exc.detail)
            key = str(problem["key"])
            named = body_field.search(message)
            if key == "data" and named:
                key = named.group(1)
            found.setdefault(QUERY_FIELDS.get(key, key), message)
        if found:
            return invalid(found)
        return Response(
            ApiError(code="bad_request", message=exc.detail or "Bad request", field=None),
            status_code=HTTP_400_BAD_REQUEST,
        )

    return handler
