"""Check-in form validation and normalisation: pure functions from submitted strings to a visit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import pycountry
from stdnum import imo

from nightreg.i18n import N_
from nightreg.vocabulary import ID_DOCUMENT_TYPES, KINDS, VEHICLE_TYPES, VESSEL_TYPES

MAX_LENGTHS: dict[str, int] = {
    "guest_name": 100,
    "residence": 100,
    "phone": 32,
    "email": 254,
    "berth": 20,
    "vessel_name": 80,
    "registration": 32,
    "mmsi": 9,
    "last_port": 80,
    "next_port": 80,
    "plate": 16,
    "unit": 40,
    "company": 100,
    "notes": 500,
    "country": 2,
    "flag": 2,
    "plate_country": 2,
}

# Fields with no entry in MAX_LENGTHS (dates, numbers, choices) are short by nature; this
# bounds the work spent on whatever arrives in them instead.
_SHORT_FIELD = 40

MAX_ARRIVAL_PAST = timedelta(days=7)
MAX_ARRIVAL_AHEAD = timedelta(days=1)
MAX_STAY = timedelta(days=366)
MIN_PERSONS, MAX_PERSONS = 1, 99
MIN_LENGTH_M, MAX_LENGTH_M = Decimal(1), Decimal(100)

MSG_REQUIRED_NAME = N_("Please enter your name.")
MSG_REQUIRED_RESIDENCE = N_("Please enter your place of residence.")
MSG_REQUIRED_DEPARTURE = N_("Please enter when you expect to leave.")
MSG_KIND = N_("Please choose what you are registering.")
MSG_TOO_LONG = N_("Please use at most %(max)s characters.")
MSG_DATETIME = N_("Please enter a date and time like 2026-07-14 21:30.")
MSG_ARRIVAL_PAST = N_("The arrival must be within the last 7 days.")
MSG_ARRIVAL_AHEAD = N_("The arrival cannot be more than a day ahead.")
MSG_DEPARTURE_BEFORE = N_("The expected departure must be after the arrival.")
MSG_DEPARTURE_FAR = N_("The expected departure must be within a year of the arrival.")
MSG_PERSONS = N_("Please enter a number of persons from 1 to 99.")
MSG_COUNTRY = N_("Please choose a country from the list.")
MSG_EMAIL = N_("Please enter a valid e-mail address.")
MSG_PHONE = N_("Please enter a valid phone number.")
MSG_CHOICE = N_("Please choose an option from the list.")
MSG_VESSEL_NAME = N_("Please enter the name of the boat.")
MSG_VESSEL_ID = N_("Please enter the registration or the MMSI number.")
MSG_MMSI = N_("An MMSI number has 9 digits, starting with 201 to 775.")
MSG_IMO = N_("This IMO number is not valid; please check it.")
MSG_LENGTH_M = N_("Please enter a length from 1 to 100 metres.")
MSG_REQUIRED_PLATE = N_("Please enter the licence plate.")
MSG_PLATE = N_("Please enter a valid licence plate.")
MSG_IDENTIFIER_SYMBOLS = N_(
    "Please use only letters, digits, spaces and dashes here: no emoji, symbols or "
    "invisible characters."
)
MSG_DEPARTURE_PAST = N_("The expected departure must be later than now.")


@dataclass(frozen=True)
class FieldError:
    message: str
    params: dict[str, str | int] = field(default_factory=dict)


class Invalid(ValueError):
    """Input that does not validate: messages by field name.

    The one base of every `*Invalid` error of the services; the web sides turn `errors` into
    messages next to their fields (or a JSON 422) in one place.
    """

    def __init__(self, errors: Mapping[str, FieldError]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors: dict[str, FieldError] = dict(errors)


@dataclass(frozen=True)
class CheckinData:
    kind: str
    arrived_at: datetime
    expected_departure_at: datetime
    persons: int
    guest_name: str
    residence: str
    country: str | None
    phone: str | None
    email: str | None
    id_document_type: str | None
    berth: str | None
    vessel_name: str | None
    registration: str | None
    mmsi: str | None
    flag: str | None
    vessel_type: str | None
    length_m: Decimal | None
    last_port: str | None
    next_port: str | None
    plate: str | None
    plate_country: str | None
    vehicle_type: str | None
    unit: str | None
    company: str | None
    notes: str | None
    subject_key: str


def _checkin_data(**fields: Any) -> CheckinData:
    """CheckinData(**fields) without the generated __init__ of a frozen dataclass, which sets
    each of its 26 fields through object.__setattr__ and cost more than several fields' checks
    (an import checks 100,000 rows). The same instance: frozen, equal, hashable; every field
    must be given (the unit tests hold the two ways to one)."""
    data = object.__new__(CheckinData)
    data.__dict__.update(fields)
    return data


_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})
# Not str.isspace(): that also counts the information separators \x1c-\x1f, which never
# separated anything a person typed.
_SPACING_CONTROLS = frozenset("\t\n\v\f\r\x85")
_BLANK_LINES = re.compile(r"\n{3,}")


def _strip_controls(text: str, *, keep_newlines: bool) -> str:
    if text.isprintable():
        # The usual case, checked at C speed: a printable string has no character of the
        # dropped categories (nor a tab or line break), so there is nothing to take out.
        return text
    kept: list[str] = []
    for char in text:
        if unicodedata.category(char) not in _DROPPED_CATEGORIES:
            kept.append(char)
        elif char in _SPACING_CONTROLS:
            # A tab or line break pasted into a one-line field still separated two words.
            kept.append("\n" if keep_newlines and char == "\n" else " ")
    return "".join(kept)


def clean_text(value: str | None, max_length: int, *, multiline: bool = False) -> str:
    """Text as it is stored: NFC, no control or format characters, whitespace collapsed.

    Does not truncate to max_length (the validator reports the length), but a value far longer
    than max_length is cut before cleaning so that a huge submission costs little to refuse.
    With multiline, line breaks survive (as \\n) and runs of blank lines shrink to one.
    """
    if not value:
        return ""
    text = value[: max_length * 4 + 256]
    if text.isascii() and text.isprintable():
        # The usual case, at C speed: no control characters or line breaks to take out, and
        # NFC leaves ASCII as it is; what is left is collapsing the spaces.
        return " ".join(text.split())
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", _strip_controls(text, keep_newlines=multiline))
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _without_accents(text: str) -> str:
    if text.isascii():  # the usual case, and NFKD leaves ASCII as it is
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# Folded names and identifiers remembered (normalise_identifier): a few hundred kB at most.
IDENTIFIER_CACHE_SIZE = 4096
_IDENTIFIER_SEPARATORS = re.compile(r"[\s\-./_:\u2010-\u2015\u2212]+")


@lru_cache(maxsize=IDENTIFIER_CACHE_SIZE)
def normalise_identifier(value: str) -> str:
    """A registration or plate as a key: "nl-123 ab" -> "NL123AB".

    Accents are folded too, so a German plate typed "LÖ-AB 12" or "LO-AB 12" is one car and
    still fits A-Z0-9; full-width characters from Asian keyboards become plain ASCII.
    Remembered: a visit's names and identifiers are folded several times over (its check, its
    subject key, its search key), and an imported register repeats its names.
    """
    return _IDENTIFIER_SEPARATORS.sub("", _without_accents(value).upper())


def normalise_person(name: str, residence: str) -> str:
    """The key of a person without boat or car: "person:jan de vries|amsterdam"."""

    def fold(text: str) -> str:
        # "|" separates the two parts, so it may not occur inside one; the cap keeps the key
        # within its column even when NFKD expands ligatures.
        folded = _without_accents(text.casefold()).replace("|", " ")
        return " ".join(folded.split())[:100]

    return f"person:{fold(name)}|{fold(residence)}"


def subject_key(
    kind: str,
    *,
    registration: str | None,
    mmsi: str | None,
    plate: str | None,
    guest_name: str,
    residence: str,
) -> str:
    """The identity that rules follow across visits: reg:…, mmsi:…, plate:… or person:…."""
    if kind == "vessel":
        reg = normalise_identifier(registration) if registration else ""
        if reg:
            return f"reg:{reg}"
        if mmsi:
            return f"mmsi:{mmsi}"
    elif kind == "vehicle":
        number = normalise_identifier(plate) if plate else ""
        if number:
            return f"plate:{number}"
    elif kind != "stay":
        raise ValueError(f"unknown kind: {kind!r}")
    # A vessel or vehicle that validated always has its identifier; this covers direct callers.
    return normalise_person(guest_name, residence)


def search_key(
    guest_name: str | None,
    vessel_name: str | None,
    registration: str | None,
    mmsi: str | None,
    plate: str | None,
) -> str:
    """What the register search matches: names and identifiers without case, accents or dashes.

    "Jan de Vries" and "NL-123-AB" are kept as "JANDEVRIES|NL123AB", so that "de vries",
    "devries" and "nl 123 ab" all find them.
    """
    parts = (guest_name, vessel_name, registration, mmsi, plate)
    return "|".join(normalise_identifier(p) for p in parts if p)[:400]


_MMSI = re.compile(r"[0-9]{9}")


def is_valid_mmsi(value: str) -> bool:
    """A ship station's MMSI: 9 digits whose first three (the MID) are a country's, 201..775."""
    return bool(_MMSI.fullmatch(value)) and 201 <= int(value[:3]) <= 775


# What an identifier (registration, plate, MMSI) may not hold: pictographs and other symbols
# (emoji, their skin tones, keycaps, flags), circled and superscript numbers, control, format
# and private-use characters, and the variation selectors that turn a character into an
# emoji. Letters of any script, digits, spaces and punctuation ("/", ".", "-") stay:
# registrations abroad use them.
_NOT_IN_IDENTIFIERS = frozenset({"So", "Sk", "No", "Me", "Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def has_pictograph_or_control(value: str) -> bool:
    """Whether a typed identifier holds an emoji, another symbol or an invisible character."""
    if value.isascii():
        # ASCII has no pictographs; its only characters refused are the controls (not a tab:
        # that is a control too, and an identifier has no use for it either).
        return not value.isprintable()
    return bool(_VARIATION_SELECTORS.search(value)) or any(
        unicodedata.category(c) in _NOT_IN_IDENTIFIERS for c in value
    )


# The RDW's side codes ("sidecodes") of Dutch licence plates: letters (L) and digits (D) in
# three groups. 1-6 date from 1951-1998, 7-14 from 1999 on; what they allow of letters (no
# vowels, no C or Q, ...) is the RDW's business, not a check of ours.
_DUTCH_SIDE_CODES: tuple[tuple[int, str], ...] = (
    (1, "LL-DD-DD"),
    (2, "DD-DD-LL"),
    (3, "DD-LL-DD"),
    (4, "LL-DD-LL"),
    (5, "LL-LL-DD"),
    (6, "DD-LL-LL"),
    (7, "DD-LLL-D"),
    (8, "D-LLL-DD"),
    (9, "LL-DDD-L"),
    (10, "L-DDD-LL"),
    (11, "LLL-DD-L"),
    (12, "L-DD-LLL"),
    (13, "D-LL-DDD"),
    (14, "DDD-LL-D"),
)


def _side_code_pattern(layout: str) -> re.Pattern[str]:
    groups = layout.split("-")
    return re.compile(
        "".join(f"([A-Z]{{{len(g)}}})" if g[0] == "L" else f"([0-9]{{{len(g)}}})" for g in groups)
    )


_DUTCH_PLATES = tuple((code, _side_code_pattern(layout)) for code, layout in _DUTCH_SIDE_CODES)


def dutch_side_code(plate: str) -> int | None:
    """The side code (1-14) a plate fits, whatever its dashes, spaces and case; or None."""
    key = normalise_identifier(plate)
    for code, pattern in _DUTCH_PLATES:
        if pattern.fullmatch(key):
            return code
    return None


def dutch_plate(plate: str) -> str | None:
    """A Dutch plate as the RDW writes it: "12abc3" -> "12-ABC-3"; None if it fits no side code.

    The runs of letters and digits of a plate name at most one side code (the unit tests hold
    the table to that), so the order of the table does not matter.
    """
    key = normalise_identifier(plate)
    for _code, pattern in _DUTCH_PLATES:
        match = pattern.fullmatch(key)
        if match is not None:
            return "-".join(match.groups())
    return None


_LOCAL_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,6})?)?"
)


def parse_local_datetime(value: str, tz: ZoneInfo) -> datetime | None:
    """A wall-clock time as typed at the site (HTML datetime-local), as an aware UTC datetime.

    A time skipped by the spring DST change is read with the offset before it (02:30 becomes
    03:30 summer time); a time that occurs twice in autumn is taken as the first occurrence.
    """
    match = _LOCAL_DATETIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=0)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)*\.[^@\s.]{2,}")
_PHONE = re.compile(r"\+?[0-9 ()\-]+")
_IMO_LIKE = re.compile(r"IMO[\s:.\-]*([0-9]{7})", re.IGNORECASE)
_PLATE = re.compile(r"[A-Z0-9]{2,12}")
_PERSONS = re.compile(r"[0-9]{1,3}")
_LENGTH_M = re.compile(r"([0-9]{1,3})(?:[.,]([0-9]{1,3}))?")
_COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")


class _Form:
    """Reads one submitted form, collecting every error instead of stopping at the first."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self._form = form
        self.errors: dict[str, FieldError] = {}

    def error(self, name: str, message: str, **params: str | int) -> None:
        self.errors.setdefault(name, FieldError(message, dict(params)))

    def raw(self, name: str, max_length: int) -> str:
        value = self._form.get(name)
        # A form parser may hand over something odd for a repeated key; only text is read.
        return clean_text(value, max_length) if isinstance(value, str) else ""

    def text(self, name: str, *, required: str | None = None, multiline: bool = False) -> str:
        """The cleaned value ("" when absent), after the required and length checks."""
        limit = MAX_LENGTHS[name]
        value = self._form.get(name)
        cleaned = clean_text(value, limit, multiline=multiline) if isinstance(value, str) else ""
        if not cleaned:
            if required:
                self.error(name, required)
            return ""
        if len(cleaned) > limit:
            self.error(name, MSG_TOO_LONG, max=limit)
            return ""
        return cleaned

    def optional_text(self, name: str, *, multiline: bool = False) -> str | None:
        return self.text(name, multiline=multiline) or None

    def plain(self, name: str) -> bool:
        """False (with the error) when an identifier holds an emoji or an invisible character.

        The check reads what was sent, before cleaning: cleaning would silently drop the
        control characters and leave an identifier the visitor did not type.
        """
        value = self._form.get(name)
        if isinstance(value, str) and has_pictograph_or_control(value[: _SHORT_FIELD * 4]):
            self.error(name, MSG_IDENTIFIER_SYMBOLS)
            return False
        return True

    def choice(self, name: str, options: Sequence[str]) -> str | None:
        value = self.raw(name, _SHORT_FIELD)
        if not value:
            return None
        if value not in options:
            self.error(name, MSG_CHOICE)
            return None
        return value

    def country(self, name: str) -> str | None:
        # A select, so anything but a known code was not picked from the list: a length error
        # would make no sense to the visitor.
        value = self.raw(name, MAX_LENGTHS[name])
        if not value:
            return None
        if _COUNTRY_CODE.fullmatch(value) and pycountry.countries.get(alpha_2=value.upper()):
            return value.upper()
        self.error(name, MSG_COUNTRY)
        return None

    def checked(
        self, name: str, value: str | None, ok: Callable[[str], bool], message: str
    ) -> str | None:
        if value and not ok(value):
            self.error(name, message)
            return None
        return value

    def persons(self) -> int | None:
        return _persons(self)

    def length_m(self) -> Decimal | None:
        return _length_m(self)


def _persons(form: _Form) -> int | None:
    value = form.raw("persons", _SHORT_FIELD)
    if _PERSONS.fullmatch(value) and MIN_PERSONS <= int(value) <= MAX_PERSONS:
        return int(value)
    form.error("persons", MSG_PERSONS)
    return None


def _length_m(form: _Form) -> Decimal | None:
    value = form.raw("length_m", _SHORT_FIELD)
    if not value:
        return None
    match = _LENGTH_M.fullmatch(value)
    if match is not None:
        whole, fraction = match.groups()
        try:
            length = Decimal(f"{whole}.{fraction or 0}").quantize(
                Decimal("0.1"), rounding=ROUND_HALF_UP
            )
        except InvalidOperation:
            length = None
        if length is not None and MIN_LENGTH_M <= length <= MAX_LENGTH_M:
            return length
    form.error("length_m", MSG_LENGTH_M)
    return None


def _is_valid_email(value: str) -> bool:
    return bool(_EMAIL.fullmatch(value))


def _is_valid_phone(value: str) -> bool:
    digits = sum(c.isascii() and c.isdigit() for c in value)
    return bool(_PHONE.fullmatch(value)) and 6 <= digits <= 20


def _is_valid_plate(value: str) -> bool:
    return bool(_PLATE.fullmatch(normalise_identifier(value)))


def _is_valid_registration(value: str) -> bool:
    # Only something written as an IMO number is held to the IMO check digit: registrations
    # and hull numbers elsewhere have no common format to check.
    match = _IMO_LIKE.fullmatch(value)
    return match is None or bool(imo.is_valid(match.group(1)))


class FormMemo:
    """What the validation of many forms remembers between them (an import's rows): per field,
    what a text came to (its cleaned value and its error), since a register repeats its names,
    towns, dates, lengths and berths. Bounded: a field's memory is cleared when it holds
    MEMO_SIZE texts, and given up for the rest of the import when fewer than a quarter of its
    lookups found one (references, registrations: every row its own); a text longer than
    MEMO_LONGEST is checked each time (long notes hardly repeat, and would hold memory).
    """

    MEMO_SIZE = 2048
    MEMO_LONGEST = 100

    def __init__(self) -> None:
        self.fields: dict[str, _FieldMemo] = {}


_MEMO_LONGEST = FormMemo.MEMO_LONGEST  # a module's name: looked up for every field of a row


class _FieldMemo:
    __slots__ = ("lookups", "on", "seen")

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], tuple[Any, FieldError | None]] = {}
        self.lookups = 0
        self.on = True


class _RememberingForm(_Form):
    """A _Form whose field readings come from a FormMemo when their text was read before:
    the same value and the same error (added as the reading itself would add it)."""

    def __init__(self, form: Mapping[str, str], memo: FormMemo) -> None:
        super().__init__(form)
        self._fields = memo.fields

    def _recall(self, name: str, key: tuple[Any, ...], read: Callable[..., Any], *args: Any) -> Any:
        field_memo = self._fields.get(name)
        if field_memo is None:
            field_memo = self._fields[name] = _FieldMemo()
        elif not field_memo.on:
            return read(self, *args)
        if len(key[1]) > _MEMO_LONGEST:  # every key holds the field's text second
            return read(self, *args)
        seen = field_memo.seen
        field_memo.lookups += 1
        found = seen.get(key)
        if found is None:
            # Read it with an error list of its own, to know this reading's error alone.
            errors, self.errors = self.errors, {}
            try:
                value = read(self, *args)
            finally:
                own, self.errors = self.errors, errors
            if len(seen) >= FormMemo.MEMO_SIZE:
                if field_memo.lookups - len(seen) < field_memo.lookups // 4:
                    field_memo.on = False  # its texts hardly repeat: not worth remembering
                seen.clear()
                field_memo.lookups = 0
            found = seen[key] = (value, own.get(name))
        value, error = found
        if error is not None:
            self.errors.setdefault(name, error)
        return value

    # An empty or absent field (most of them in a register's row) reads as the base class
    # reads it, without the memo.

    def raw(self, name: str, max_length: int) -> str:
        value = self._form.get(name)
        if not value or not isinstance(value, str):
            return ""
        recalled: str = self._recall(name, ("raw", value, max_length), _Form.raw, name, max_length)
        return recalled

    def text(self, name: str, *, required: str | None = None, multiline: bool = False) -> str:
        value = self._form.get(name)
        if not value or not isinstance(value, str):
            if required:
                self.error(name, required)
            return ""
        recalled: str = self._recall(
            name, ("text", value, required, multiline), _read_text, name, required, multiline
        )
        return recalled

    def optional_text(self, name: str, *, multiline: bool = False) -> str | None:
        if not self._form.get(name):
            return None  # most of a register row's fields: answered without two more calls
        return self.text(name, multiline=multiline) or None

    def plain(self, name: str) -> bool:
        value = self._form.get(name)
        if not value or not isinstance(value, str):
            return True
        recalled: bool = self._recall(name, ("plain", value), _Form.plain, name)
        return recalled

    def choice(self, name: str, options: Sequence[str]) -> str | None:
        value = self._form.get(name)
        if not value or not isinstance(value, str):
            return None
        recalled: str | None = self._recall(
            name, ("choice", value, options), _Form.choice, name, options
        )
        return recalled

    def country(self, name: str) -> str | None:
        value = self._form.get(name)
        if not value or not isinstance(value, str):
            return None
        recalled: str | None = self._recall(name, ("country", value), _Form.country, name)
        return recalled

    def checked(
        self, name: str, value: str | None, ok: Callable[[str], bool], message: str
    ) -> str | None:
        if not value:
            return value
        recalled: str | None = self._recall(
            name, ("checked", value, ok, message), _Form.checked, name, value, ok, message
        )
        return recalled

    def persons(self) -> int | None:
        value = self._form.get("persons")
        if not isinstance(value, str):
            return _persons(self)
        recalled: int | None = self._recall("persons", ("persons", value), _persons)
        return recalled

    def length_m(self) -> Decimal | None:
        value = self._form.get("length_m")
        if not value or not isinstance(value, str):
            return _length_m(self)
        recalled: Decimal | None = self._recall("length_m", ("length_m", value), _length_m)
        return recalled


def _read_text(form: _Form, name: str, required: str | None, multiline: bool) -> str:
    return _Form.text(form, name, required=required, multiline=multiline)


def _times(
    form: _Form,
    *,
    now: datetime,
    tz: ZoneInfo,
    max_arrival_past: timedelta | None,
    parse_datetime: Callable[[str, ZoneInfo], datetime | None],
) -> tuple[datetime | None, datetime | None]:
    arrival_text = form.raw("arrived_at", _SHORT_FIELD)
    arrived_at: datetime | None = now
    if arrival_text:
        arrived_at = parse_datetime(arrival_text, tz)
        if arrived_at is None:
            form.error("arrived_at", MSG_DATETIME)
        elif max_arrival_past is not None and arrived_at < now - max_arrival_past:
            form.error("arrived_at", MSG_ARRIVAL_PAST)
        elif arrived_at > now + MAX_ARRIVAL_AHEAD:
            form.error("arrived_at", MSG_ARRIVAL_AHEAD)

    departure_text = form.raw("expected_departure_at", _SHORT_FIELD)
    departure: datetime | None = None
    if not departure_text:
        form.error("expected_departure_at", MSG_REQUIRED_DEPARTURE)
    else:
        departure = parse_datetime(departure_text, tz)
        if departure is None:
            form.error("expected_departure_at", MSG_DATETIME)
        elif arrived_at is not None and departure <= arrived_at:
            form.error("expected_departure_at", MSG_DEPARTURE_BEFORE)
        elif arrived_at is not None and departure > arrived_at + MAX_STAY:
            form.error("expected_departure_at", MSG_DEPARTURE_FAR)
    return arrived_at, departure


def validate_new_departure(
    value: str | None, *, arrived_at: datetime, now: datetime, tz: ZoneInfo
) -> tuple[datetime | None, FieldError | None]:
    """A visitor's new expected departure (extend my stay): the check-in's rules, and later
    than now, since a visitor who is still here does not expect to have left already."""
    text = clean_text(value, _SHORT_FIELD) if isinstance(value, str) else ""
    if not text:
        return None, FieldError(MSG_REQUIRED_DEPARTURE)
    departure = parse_local_datetime(text, tz)
    if departure is None:
        return None, FieldError(MSG_DATETIME)
    if departure <= arrived_at:
        return None, FieldError(MSG_DEPARTURE_BEFORE)
    if departure > arrived_at + MAX_STAY:
        return None, FieldError(MSG_DEPARTURE_FAR)
    if departure <= now:
        return None, FieldError(MSG_DEPARTURE_PAST)
    return departure, None


def validate_checkin(
    form: Mapping[str, str],
    *,
    kind: str,
    allowed_kinds: Sequence[str],
    now: datetime,
    tz: ZoneInfo,
    max_arrival_past: timedelta | None = MAX_ARRIVAL_PAST,
    parse_datetime: Callable[[str, ZoneInfo], datetime | None] = parse_local_datetime,
    memo: FormMemo | None = None,
) -> tuple[CheckinData | None, dict[str, FieldError]]:
    """Clean and check a submitted check-in form: (data, {}) or (None, errors by field name).

    Fields that do not belong to the kind are ignored, and so is anything the form was not
    meant to carry: ID numbers and BSNs in particular are never read.

    An imported register is history: it passes `max_arrival_past=None` (no limit on how far
    back an arrival lies) and a `parse_datetime` that also reads offsets and Dutch dates, and
    a `memo` of its own (FormMemo): each distinct text of a field is checked once an import.
    """
    # Longer than most: one field after another in the form's order, each a few lines, so that a
    # reader checks the whole form against the kiosk's in one place.
    f = _Form(form) if memo is None else _RememberingForm(form, memo)
    # Read a naive now as UTC rather than let astimezone() consult the machine's own zone.
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    if kind not in KINDS or kind not in allowed_kinds:
        f.error("kind", MSG_KIND)

    guest_name = f.text("guest_name", required=MSG_REQUIRED_NAME)
    residence = f.text("residence", required=MSG_REQUIRED_RESIDENCE)
    arrived_at, departure = _times(
        f, now=now, tz=tz, max_arrival_past=max_arrival_past, parse_datetime=parse_datetime
    )
    persons = f.persons()
    country = f.country("country")
    email = f.checked("email", f.optional_text("email"), _is_valid_email, MSG_EMAIL)
    phone = f.checked("phone", f.optional_text("phone"), _is_valid_phone, MSG_PHONE)
    id_document_type = f.choice("id_document_type", ID_DOCUMENT_TYPES)
    notes = f.optional_text("notes", multiline=True)

    berth = vessel_name = registration = mmsi = flag = vessel_type = None
    last_port = next_port = plate = plate_country = vehicle_type = unit = company = None
    length_m: Decimal | None = None
    if kind == "vessel":
        vessel_name = f.text("vessel_name", required=MSG_VESSEL_NAME) or None
        registration = f.checked(
            "registration", f.optional_text("registration"), _is_valid_registration, MSG_IMO
        )
        if registration and not normalise_identifier(registration):
            # Only separators ("-", "/"): nothing that identifies the boat.
            registration = None
        if not f.plain("registration"):
            registration = None
        mmsi = f.raw("mmsi", MAX_LENGTHS["mmsi"] * 4).replace(" ", "") or None
        if not f.plain("mmsi"):
            mmsi = None
        if mmsi and len(mmsi) > MAX_LENGTHS["mmsi"]:
            f.error("mmsi", MSG_TOO_LONG, max=MAX_LENGTHS["mmsi"])
            mmsi = None
        mmsi = f.checked("mmsi", mmsi, is_valid_mmsi, MSG_MMSI)
        if not registration and not mmsi and not {"registration", "mmsi"} & f.errors.keys():
            f.error("registration", MSG_VESSEL_ID)
        flag = f.country("flag")
        vessel_type = f.choice("vessel_type", VESSEL_TYPES)
        length_m = f.length_m()
        berth = f.optional_text("berth")
        last_port = f.optional_text("last_port")
        next_port = f.optional_text("next_port")
    elif kind == "vehicle":
        plate = f.text("plate", required=MSG_REQUIRED_PLATE) or None
        if plate and not f.plain("plate"):
            plate = None
        plate = f.checked("plate", plate, _is_valid_plate, MSG_PLATE)
        plate_country = f.country("plate_country")
        if plate and plate_country in (None, "NL"):
            # A Dutch plate (or one of no stated country) is kept as the RDW writes it.
            plate = dutch_plate(plate) or plate
        vehicle_type = f.choice("vehicle_type", VEHICLE_TYPES)
    if kind in ("vehicle", "stay"):
        unit = f.optional_text("unit")
        company = f.optional_text("company")

    if f.errors or arrived_at is None or departure is None or persons is None:
        return None, f.errors
    data = _checkin_data(
        kind=kind,
        arrived_at=arrived_at,
        expected_departure_at=departure,
        persons=persons,
        guest_name=guest_name,
        residence=residence,
        country=country,
        phone=phone,
        email=email,
        id_document_type=id_document_type,
        berth=berth,
        vessel_name=vessel_name,
        registration=registration,
        mmsi=mmsi,
        flag=flag,
        vessel_type=vessel_type,
        length_m=length_m,
        last_port=last_port,
        next_port=next_port,
        plate=plate,
        plate_country=plate_country,
        vehicle_type=vehicle_type,
        unit=unit,
        company=company,
        notes=notes,
        subject_key=subject_key(
            kind,
            registration=registration,
            mmsi=mmsi,
            plate=plate,
            guest_name=guest_name,
            residence=residence,
        ),
    )
    return data, {}
