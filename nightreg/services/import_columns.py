"""What an imported spreadsheet's columns and cells mean: pure functions, no database.

Headers: a column is recognised by its normalised header (accents, case, punctuation and a unit
in brackets do not matter) in Dutch, English or German, with the usual synonyms of paper and
spreadsheet registers ("Naam schipper", "Ligplaats", "Ankunft", …), by the export's own column
codes, and by the export's headers in any of our languages (`transfer.EXPORT_HEADERS`), so that
every export reads back. What is not recognised is a question for the member of staff (the
mapping step); their answers are remembered per site by normalised header.

Cells: dates in the common Dutch, German and ISO forms, with or without a time (a date alone
takes the site's usual arrival or departure hour), an empty persons cell is 1, and the kind of a
row is told by its cells when the file has no kind column.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from nightreg.i18n import LOCALES, translations
from nightreg.services.transfer import EXPORT_COLUMNS, EXPORT_HEADERS
from nightreg.vocabulary import KIND_LABELS, KINDS

# The fields a column can fill ("" skips a column): the export's columns but the site's slug.
FIELDS: tuple[str, ...] = tuple(c for c in EXPORT_COLUMNS if c != "site")
SKIP = ""
# What the mapping step lists for each field (the export's header in the reader's language).
FIELD_LABELS: dict[str, str] = {name: EXPORT_HEADERS[name] for name in FIELDS}

# Headers that mean a field, besides its code and the export's headers in nl/en/de. Written as
# people write them; normalise_header() folds them like a file's header.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "reference": ("ref", "referentie", "kenmerk", "referenz", "reference number"),
    "kind": ("soort", "soort bezoek", "type bezoek", "visit kind", "kind of visit", "art",
             "art des besuchs", "besuchsart"),
    "source": ("bron", "quelle", "entered by"),
    "arrived_at": ("arrival", "arrived", "arrival date", "date of arrival", "arrival time",
                   "check in", "checkin", "from", "aankomst", "datum aankomst",
                   "aankomstdatum", "aankomst datum", "aankomsttijd", "aangekomen", "van",
                   "ankunft", "ankunftsdatum", "datum ankunft", "anreise", "anreisedatum",
                   "angekommen"),
    "expected_departure_at": ("expected departure", "planned departure", "until",
                              "expected departure date", "verwacht vertrek",
                              "verwachte vertrek", "verwachte vertrekdatum", "gepland vertrek",
                              "tot", "voraussichtliche abreise", "geplante abreise", "bis",
                              "abreise geplant"),
    "departed_at": ("departure", "departed", "departure date", "date of departure",
                    "check out", "checkout", "left", "vertrek", "datum vertrek",
                    "vertrekdatum", "vertrek datum", "vertrektijd", "vertrokken", "abreise",
                    "abreisedatum", "datum abreise", "abfahrt", "abgereist"),
    "persons": ("people", "number of persons", "number of people", "guests", "pax",
                "personen", "aantal personen", "aantal", "aantal pers", "pers",
                "anzahl personen", "anzahl", "personenzahl", "anzahl gaste"),
    "guest_name": ("name", "guest", "guest name", "skipper", "skipper name", "name of guest",
                   "naam", "naam schipper", "schipper", "gast", "naam gast", "gastnaam",
                   "naam bezoeker", "bezoeker", "bestuurder", "naam bestuurder", "gastname",
                   "name des gastes", "schiffsfuhrer", "name skipper", "skipper naam"),
    "residence": ("residence", "place of residence", "city", "town", "home town", "hometown",
                  "woonplaats", "plaats", "wohnort", "ort", "stadt", "heimatort"),
    "country": ("country", "country of residence", "land", "woonland", "herkunftsland"),
    "id_document_type": ("id document", "legitimatie", "soort legitimatie",
                         "identiteitsbewijs", "ausweis", "ausweisart"),
    "phone": ("telephone", "phone number", "mobile", "telefoon", "telefoonnummer", "tel",
              "mobiel", "telefonnummer", "telefon", "handy", "mobil"),
    "email": ("e mail", "mail", "email address", "e mailadres", "emailadres", "e mail adres",
              "e mail adresse", "emailadresse"),
    "berth": ("mooring", "box", "jetty", "pier", "ligplaats", "boxnummer", "steiger",
              "ligplaatsnummer", "liegeplatz", "steg", "platz"),
    "vessel_name": ("vessel", "vessel name", "boat", "boat name", "yacht", "yacht name",
                    "name of the boat", "naam schip", "bootnaam", "schip", "naam boot", "boot",
                    "scheepsnaam", "naam van de boot", "jacht", "schiffsname", "bootsname",
                    "schiff", "name des boots", "name der yacht"),
    "registration": ("registration", "registration number", "hull number", "hull id",
                     "hin", "registratie", "registratienummer", "rompnummer",
                     "registratie boot", "bootkenteken", "vaarbewijs nummer",
                     "bootskennzeichen", "registriernummer", "registrierung"),
    "mmsi": ("mmsi number", "mmsi nummer", "mmsi nr"),
    "flag": ("flag", "vlag", "flagge", "flag state"),
    "vessel_type": ("vessel type", "boat type", "type of boat", "type schip", "type boot",
                    "scheepstype", "boottype", "soort boot", "soort schip", "bootstyp",
                    "schiffstyp", "bootsart"),
    "length_m": ("length", "loa", "length overall", "lengte", "lengte over alles", "lange",
                 "bootslange", "lange uber alles"),
    "last_port": ("last port", "coming from", "from port", "vorige haven", "laatste haven",
                  "herkomst", "komend van", "vorheriger hafen", "letzter hafen",
                  "kommend von", "herkunft"),
    "next_port": ("next port", "going to", "destination", "volgende haven", "bestemming",
                  "naar", "nachster hafen", "ziel", "zielhafen", "reiseziel"),
    "plate": ("plate", "licence plate", "license plate", "number plate", "registration plate",
              "car", "nummerplaat", "kenteken auto", "autokenteken", "kennzeichen auto",
              "autokennzeichen", "nummernschild", "amtliches kennzeichen"),
    "plate_country": ("plate country", "country of the plate", "land kenteken",
                      "land van het kenteken", "land des kennzeichens", "kennzeichen land"),
    "vehicle_type": ("vehicle type", "type of vehicle", "vehicle", "soort voertuig",
                     "type voertuig", "voertuig", "fahrzeugtyp", "fahrzeug", "fahrzeugart"),
    "unit": ("unit number", "kavel", "unitnummer", "bedrijfsunit", "einheit", "halle"),
    "company": ("company", "firm", "bedrijf", "firma", "bedrijfsnaam", "unternehmen"),
    "notes": ("notes", "note", "remarks", "remark", "comments", "comment", "opmerkingen",
              "opmerking", "bijzonderheden", "notities", "notitie", "bemerkungen",
              "anmerkungen", "notizen", "hinweise", "bemerkung"),
}  # fmt: skip
# Columns of the export that are read and left alone: the target site is chosen, not read.
KNOWN_UNREAD = ("site", "locatie", "standort", "haven", "jachthaven", "marina")
# A plate at a car park, a registration on a boat: "kenteken" means the boat's when the file
# also names a boat and has no registration column of its own.
AMBIGUOUS_PLATE = ("kenteken", "kennzeichen")

# Kinds as people write them.
KIND_SYNONYMS: dict[str, str] = {
    "boot": "vessel", "boat": "vessel", "schip": "vessel", "schiff": "vessel", "jacht": "vessel",
    "yacht": "vessel", "vaartuig": "vessel", "auto": "vehicle", "car": "vehicle",
    "voertuig": "vehicle", "fahrzeug": "vehicle", "verblijf": "stay", "overnachting": "stay",
    "ubernachtung": "stay", "aufenthalt": "stay",
}  # fmt: skip

_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise_header(header: str) -> str:
    """A header folded for lookup: "Lengte (m)" -> "lengte", "E-Mail" -> "e mail"."""
    text = unicodedata.normalize("NFKD", header.replace("ß", "ss"))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _BRACKETS.sub(" ", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


@cache
def known_headers() -> dict[str, str]:
    """Normalised header -> field (or SKIP for a column read and left alone)."""
    known: dict[str, str] = {}
    for name in KNOWN_UNREAD:
        known[normalise_header(name)] = SKIP
    for field, words in SYNONYMS.items():
        for word in words:
            known[normalise_header(word)] = field
    for field in FIELDS:
        known[normalise_header(field)] = field  # "guest_name" -> "guest name"
    known[normalise_header("site")] = SKIP
    for locale in LOCALES:
        catalog = translations(locale)
        for field, label in EXPORT_HEADERS.items():
            known[normalise_header(catalog.ugettext(label))] = field if field in FIELDS else SKIP
    return known


def guess_columns(headers: Sequence[str], remembered: Mapping[str, str]) -> list[str | None]:
    """The field of each column: remembered choice, else recognised, else None (ask)."""
    known = known_headers()
    normalised = [normalise_header(h) for h in headers]
    guessed: list[str | None] = []
    for header in normalised:
        if header in remembered and (remembered[header] in FIELDS or remembered[header] == SKIP):
            guessed.append(remembered[header])
        elif header in AMBIGUOUS_PLATE:
            guessed.append(None)  # decided below, with the other columns in view
        else:
            guessed.append(known.get(header) if header else SKIP)
    for i, header in enumerate(normalised):
        if guessed[i] is None and header in AMBIGUOUS_PLATE:
            boat = "vessel_name" in guessed and "registration" not in guessed
            guessed[i] = "registration" if boat else "plate"
    return guessed


def mapping_problems(columns: Sequence[str | None]) -> list[str]:
    """Fields chosen for two columns: each field takes one column."""
    chosen = [c for c in columns if c]
    return sorted({c for c in chosen if chosen.count(c) > 1})


def missing_fields(columns: Iterable[str | None]) -> list[str]:
    """Fields a register cannot do without that no column fills."""
    have = set(columns)
    missing = [f for f in ("arrived_at", "guest_name", "residence") if f not in have]
    if "expected_departure_at" not in have and "departed_at" not in have:
        missing.append("expected_departure_at")
    return missing


def parse_mapping_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """`Header=field` lines (the command line's --map, a --mapping file) -> {header: field}.

    "skip" (or nothing after the =) skips the column. Raises ValueError naming a bad line.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        if not pair.strip() or pair.lstrip().startswith("#"):
            continue
        header, sep, field = pair.rpartition("=")
        field = field.strip()
        if not sep or not header.strip():
            raise ValueError(f"{pair!r} is not HEADER=FIELD")
        if field.lower() in ("skip", ""):
            field = SKIP
        elif field not in FIELDS:
            raise ValueError(f"{pair!r}: {field!r} is not a field ({', '.join(FIELDS)} or skip)")
        mapping[normalise_header(header)] = field
    return mapping


# --- cells ------------------------------------------------------------------------------------

_DAY_FIRST = re.compile(
    r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.]([0-9]{4}|[0-9]{2})"
    r"(?:,?[ T]+([0-9]{1,2})[:.]([0-9]{2})(?:[:.]([0-9]{2}))?)?"
)
_YEAR_FIRST = re.compile(
    r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})"
    r"(?:[ T]+([0-9]{1,2})[:.]([0-9]{2})(?:[:.]([0-9]{2})(?:\.[0-9]{1,6})?)?)?"
)
_OFFSET = re.compile(r"(?:Z|[+-][0-9]{2}:?[0-9]{2})$")


def parse_datetime(value: str, tz: ZoneInfo, default_time: time | None = None) -> datetime | None:
    """A time from an imported register, as an aware UTC datetime (None if unreadable).

    ISO 8601 with an offset is taken as written ("2026-07-14T21:30:00+02:00", also "Z").
    Without an offset the time is read on the site's clock: "2026-07-14 21:30", "14-07-2026
    21:30", "14/7/2026", "14.07.2026 21:30" (day first), "14-07-26" (20xx). A date alone takes
    `default_time` (the site's usual hour; midnight without one). Like the kiosk, a time skipped
    by the spring DST change is read with the offset before it, and a time that occurs twice in
    autumn as its first occurrence (the export writes the offset for those, so they stay exact).
    """
    text = value.strip()
    try:
        if _OFFSET.search(text) and len(text) > 10:
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
            return None
        match = _YEAR_FIRST.fullmatch(text)
        if match is not None:
            year, month, day = int(match[1]), int(match[2]), int(match[3])
        else:
            match = _DAY_FIRST.fullmatch(text)
            if match is None:
                return None
            day, month, year = int(match[1]), int(match[2]), int(match[3])
            if len(match[3]) == 2:
                year += 2000
        if match[4] is None:
            at = default_time or time(0, 0)
            hour, minute, second = at.hour, at.minute, 0
        else:
            hour, minute, second = int(match[4]), int(match[5]), int(match[6] or 0)
        local = datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=0)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_hour(text: str) -> time | None:
    """A site's usual hour "14:00" (also "14.00", "9:30"), or None."""
    match = re.fullmatch(r"([0-9]{1,2})[:.]([0-9]{2})", text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return time(int(match[1]), int(match[2]))


def cell_text(value: object, *, dates_only: bool = False) -> str:
    """A spreadsheet cell (openpyxl's value) as the text a CSV would hold.

    A datetime becomes "2026-07-14 21:30:00", or a date alone ("2026-07-14") when its cell
    shows no time (`dates_only`); whole numbers lose their ".0"; other numbers keep their digits.
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        if dates_only:
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


@cache
def kind_words() -> dict[str, str]:
    """A kind as written in a file (code, label in any language, synonym) -> its code."""
    words = {kind: kind for kind in KINDS}
    words.update(KIND_SYNONYMS)
    for locale in LOCALES:
        catalog = translations(locale)
        for kind, label in KIND_LABELS.items():
            words[normalise_header(catalog.ugettext(label))] = kind
    return words


def read_kind(text: str) -> str:
    """The kind a cell names ("Boot", "vessel", "Auto") or the cell itself, lower case."""
    word = text.strip().lower()
    return kind_words().get(word) or kind_words().get(normalise_header(word), word)


_VESSEL_CELLS = ("vessel_name", "registration", "mmsi")


def infer_kind(row: Mapping[str, str]) -> str:
    """A row without a kind: a boat name, registration or MMSI is a boat; a plate a vehicle;
    anything else an overnight stay."""
    for name in _VESSEL_CELLS:
        if row.get(name, "").strip():
            return "vessel"
    if row.get("plate", "").strip():
        return "vehicle"
    return "stay"


__all__ = [
    "FIELDS",
    "FIELD_LABELS",
    "SKIP",
    "cell_text",
    "guess_columns",
    "infer_kind",
    "known_headers",
    "mapping_problems",
    "missing_fields",
    "normalise_header",
    "parse_datetime",
    "parse_hour",
    "parse_mapping_pairs",
    "read_kind",
]
