"""Property tests of the kiosk form (hypothesis): whatever a visitor or a robot types into any
field (HTML, quotes, unicode, NUL and other controls, very long text), the answer is a stored
visit that reads back exactly as given (after the documented cleaning) and is shown escaped, or
the form again with a message next to a field. Never a 500, never markup from the input."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from markupsafe import escape

from nightreg.db import Database
from nightreg.services.checkin import visit_by_private_token
from nightreg.validation import MAX_LENGTHS, clean_text
from nightreg.web.control_characters import has_control_character
from tests.factories import PointRef, make_staff
from tests.pages import blocked_by_policy, csrf_from, sign_in

Client = AsyncTestClient[Litestar]
MAX_EXAMPLES = 40
MAX_BODY_BYTES = 64 * 1024  # the default NIGHTREG_MAX_BODY_BYTES of the test settings

# Input meant to break out of an attribute, a text node or a script.
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onmouseover='alert(1)",
    "</textarea><svg onload=alert(1)>",
    "{{ 7*7 }}{% raw %}",
    "javascript:alert(1)",
    '=HYPERLINK("http://evil.example")',
    "Robert'); DROP TABLE visit;--",
    "\x00\x01\x1b[31m",
    "\u202eevil\u202c",
    "Zoë Ångström 李小龙 🚤",
    "a\r\nb\tc",
    "&amp; &lt; &#34;",
    "x" * 101,
    "y" * 5000,
]
text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40).map(
        lambda s: s + "<b>"
    ),
)

# A valid boat, field by field: each example replaces some of these with random text.
VALID = {
    "vessel_name": "Zeemeeuw",
    "registration": "NL-123-AB",
    "guest_name": "Jan de Vries",
    "residence": "Hoorn",
    "persons": "2",
    "country": "NL",
    "phone": "+31 6 1234 5678",
    "email": "jan@example.org",
    "berth": "B12",
    "vessel_type": "sail",
    "length_m": "9,5",
    "flag": "NL",
    "mmsi": "244123456",
    "last_port": "Den Helder",
    "next_port": "Harlingen",
    "id_document_type": "passport",
    "notes": "Komt morgen terug",
    "arrived_at": "2026-07-14T20:45",
    "expected_departure_at": "2026-07-16T11:00",
}
# Free text: stored as typed, after clean_text (NFC, no format characters, spaces collapsed);
# a control character other than a tab or line break is refused before the form is read.
FREE_TEXT = ("vessel_name", "guest_name", "residence", "berth", "last_port", "next_port")
SHOWN_TO_THE_VISITOR = ("vessel_name", "guest_name", "residence")
SHOWN_TO_STAFF = ("guest_name",)


@st.composite
def changed(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, str]:
    """The valid boat with one to four of `fields` replaced by random text."""
    values = dict(VALID)
    for name in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=4, unique=True)):
        values[name] = draw(text)
    return values


# Two in three examples change only text that any value is fine for (so most are stored and
# shown), one in three changes any field (so most are refused at a field).
_ANY_TEXT = (*FREE_TEXT, "notes")
form_values = st.one_of(changed(_ANY_TEXT), changed(_ANY_TEXT), changed(tuple(sorted(VALID))))

_FIELD_ERROR = re.compile(r'<p class="error" id="err-([a-z_]+)" aria-live="polite">([^<]+)</p>')


def assert_no_markup_from_input(html: str, values: dict[str, str]) -> None:
    assert blocked_by_policy(html) == []
    for value in values.values():
        if any(c in value for c in "<>\"'&") and len(value) > 3:
            assert value not in html, f"unescaped: {value!r}"


async def form_for(client: Client, point: PointRef) -> dict[str, str]:
    page = await client.get(f"{point.url}?kind=vessel")
    assert page.status_code == 200
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key
    return {"_csrf_token": csrf_from(page.text), "idempotency_key": key.group(1)}


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=form_values)
async def test_any_check_in_is_stored_as_given_and_shown_escaped_or_refused_at_a_field(
    client: Client, db: Database, marina: PointRef, staff_sign_in: Any, values: dict[str, str]
) -> None:
    await staff_sign_in()
    hidden = await form_for(client, marina)
    data = {**hidden, "kind": "vessel", **values}
    answer = await client.post(marina.url, data=data, follow_redirects=False)
    size = len(urlencode(data).encode())

    assert answer.status_code in (303, 400, 413, 422), answer.status_code
    if answer.status_code == 413:
        assert size > MAX_BODY_BYTES
        return
    if any(has_control_character(v) for v in values.values()):
        # Refused before the form is read, with a message (issue 17, finding 10).
        assert answer.status_code == 400
        assert "control character" in answer.text
        return
    if answer.status_code != 303:
        errors = dict(_FIELD_ERROR.findall(answer.text))
        assert errors, "a refused form names the field at fault"
        assert set(errors) <= set(VALID) | {"kind"}
        assert_no_markup_from_input(answer.text, values)
        return

    link = answer.headers["location"].split("?")[0]
    visit = await visit_by_private_token(db, link.rsplit("/", 1)[1])
    assert visit is not None
    for name in FREE_TEXT:
        assert getattr(visit, name) == (clean_text(values[name], MAX_LENGTHS[name]) or None)
    assert visit.notes == (clean_text(values["notes"], 500, multiline=True) or None)
    assert visit.persons == int(values["persons"])

    own_page = await client.get(link)
    assert own_page.status_code == 200
    for name in SHOWN_TO_THE_VISITOR:
        assert str(escape(getattr(visit, name))) in own_page.text
    assert_no_markup_from_input(own_page.text, values)

    staff_page = await client.get(f"/admin/visits/{visit.id}/")
    assert staff_page.status_code == 200
    for name in SHOWN_TO_STAFF:
        assert str(escape(getattr(visit, name))) in staff_page.text
    assert_no_markup_from_input(staff_page.text, values)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(sorted(VALID)), value=text)
async def test_the_field_check_as_the_visitor_leaves_a_field_never_fails(
    client: Client, marina: PointRef, name: str, value: str
) -> None:
    hidden = await form_for(client, marina)
    answer = await client.post(
        f"{marina.url}/validate/{name}",
        data={**hidden, **VALID, "kind": "vessel", name: value},
        headers={"HX-Request": "true"},
    )
    if has_control_character(value):
        assert answer.status_code == 400
        assert "control character" in answer.text
        return
    assert answer.status_code in (200, 413)
    assert_no_markup_from_input(answer.text, {name: value})


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def staff_sign_in(client: Client, db: Database, marina: PointRef) -> Any:
    """Sign the client in as the marina's harbour master, once per test (not per example)."""
    done: list[bool] = []

    async def signed_in() -> None:
        if done:
            return
        staff = await make_staff(db, "harbour_master", [marina.site_slug])
        await sign_in(client, staff.email, staff.password)
        done.append(True)

    return signed_in
