"""The night round: the harbour master's evening walk along the piers, boat by boat.

A round (NightRound) has a start, an end and who walked it; its marks (RoundMark) say which
boats were seen at their berth and which were not there. A boat found at a berth that is not in
the register is added on the spot as a walk-in of source `round` (the walk-in service writes it,
through the one visit writer) with what can be read off the boat: its name, its registration or
MMSI, the berth. The desk or the visitor completes the rest.

Each mark carries an idempotency key from the phone (the page's form, or the round's script,
which keeps marks made without signal and sends them when the connection is back): a mark sent
twice is written once. A mark is not an observation: staff record one where they choose to, with
the observation form.

The boats are shown by pier and berth. A berth is free text; its pier is what comes before its
last separator ("Steiger 2-14" lies on "Steiger 2", "B-3" on "B"), or else its leading letters
("A12" lies on "A"); numbers sort as numbers ("A9" before "A12").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg import visit_status_sql
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import NightRound, RoundMark, Site, Visit
from nightreg.security import new_idempotency_key
from nightreg.services import audit, walk_ins
from nightreg.services.access import Actor
from nightreg.services.register import VIEW, VisitInvalid, scoped_visit, site_tz
from nightreg.services.sites import scoped_site
from nightreg.validation import MSG_CHOICE, FieldError, Invalid, validate_checkin
from nightreg.vocabulary import ROUND_MARKS

WALK = "rounds.walk"
# An unfinished round is the walker's to go on with for this long; after that the page offers
# a new one (the old one stays, without an end).
ROUND_OPEN = timedelta(hours=12)
# Marks kept on a phone without signal may come in this long after their round began.
LATE_MARKS = timedelta(hours=24)
# "Not seen on two rounds in a row" looks at the rounds of this last stretch.
RECENT_ROUNDS = timedelta(days=14)
# What a boat found on the round has in place of its guest's name and residence until the
# desk or the visitor fills them in (the register requires both).
UNKNOWN = "?"
# The fields of the "found a boat" form.
FOUND_FIELDS = ("vessel_name", "registration", "mmsi", "berth")

MSG_ROUND = N_("This round has ended or is not yours; please open the round page again.")
MSG_VISIT = N_("This boat is not in the register of this site.")
MSG_KEY_REUSED = N_("This mark was sent before with something else; please tap again.")
MSG_BERTH = N_("Please enter the berth where you found the boat.")


class RoundInvalid(Invalid):
    """A mark, a found boat or a round's end that cannot be taken: errors by field name."""


# --- berths and piers ------------------------------------------------------------------------

_SEPARATOR = re.compile(r"[\s\-/.:_,]+")
_EDGES = " \t-/.:_,"
_LEADING_LETTERS = re.compile(r"([^\W\d_]+)[0-9]")
_DIGITS = re.compile(r"([0-9]+)")


def pier_of(berth: str | None) -> str:
    """The pier a berth lies on: the part before its last separator, else its leading letters.

    "Steiger 2-14" → "Steiger 2", "B-3" → "B", "A12" → "A"; "" for a berth without either
    ("12") and for no berth at all.
    """
    text = (berth or "").strip(_EDGES)
    separators = list(_SEPARATOR.finditer(text))
    if separators:
        return text[: separators[-1].start()].strip(_EDGES)
    letters = _LEADING_LETTERS.match(text)
    return letters.group(1) if letters else ""


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """A text's sort key with its numbers as numbers, case and separators aside ("A9" < "A12")."""
    key: list[tuple[int, int, str]] = []
    for chunk in _DIGITS.split(text.casefold()):
        if chunk.isascii() and chunk.isdigit():
            key.append((0, int(chunk), ""))
        elif words := _SEPARATOR.sub(" ", chunk).strip():
            key.append((1, 0, words))
    return tuple(key)


def berth_sort_key(berth: str | None) -> tuple[Any, ...]:
    """Boats by pier, then berth on the pier; boats without a berth last."""
    text = (berth or "").strip()
    return (not text, natural_key(pier_of(text)), natural_key(text), text)


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Boat:
    visit: Visit
    mark: RoundMark | None  # its last mark on this round


@dataclass(frozen=True)
class Pier:
    name: str  # as the first berth on it spells it; "" for berths without a pier
    has_berths: bool  # False: the boats without a berth
    boats: list[Boat]

    @property
    def marked(self) -> int:
        return sum(1 for boat in self.boats if boat.mark is not None)


@dataclass(frozen=True)
class RoundBoard:
    site: Site
    round: NightRound
    piers: list[Pier]
    counts: dict[str, int]  # seen, missing, found, unmarked


@dataclass(frozen=True)
class RoundSummary:
    round: NightRound
    counts: dict[str, int]  # seen, missing, found


@dataclass(frozen=True)
class Marked:
    mark: RoundMark
    replayed: bool  # the key named a mark written before; nothing new was written


def group_by_pier(boats: Iterable[Boat]) -> list[Pier]:
    """Boats in pier and berth order, one group a pier (its name folded: "a" is "A")."""
    ordered = sorted(
        boats, key=lambda b: (*berth_sort_key(b.visit.berth), b.visit.vessel_name or "")
    )
    piers: list[Pier] = []
    for boat in ordered:
        berth = (boat.visit.berth or "").strip()
        name = pier_of(berth)
        if (
            piers
            and piers[-1].has_berths == bool(berth)
            and (natural_key(piers[-1].name) == natural_key(name))
        ):
            piers[-1].boats.append(boat)
        else:
            piers.append(Pier(name=name, has_berths=bool(berth), boats=[boat]))
    return piers


def last_marks(marks: Iterable[RoundMark]) -> dict[int, RoundMark]:
    """Each visit's last mark (by the time it was made, then as written)."""
    last: dict[int, RoundMark] = {}
    for mark in sorted(marks, key=lambda m: (m.marked_at, m.id)):
        last[mark.visit_id] = mark
    return last


def counts_of(marks: Mapping[int, RoundMark]) -> dict[str, int]:
    counts = dict.fromkeys((*ROUND_MARKS, "found"), 0)
    for mark in marks.values():
        counts[mark.status] += 1
        counts["found"] += int(mark.found)
    return counts


def trailing_misses(marks: Sequence[tuple[int, datetime, str, datetime, int]]) -> list[datetime]:
    """The rounds since a boat was last seen on one, on which it was not there (their starts).

    `marks` are (round id, round start, status, marked at, mark id) of one visit, any order;
    a round counts with its last mark for the boat. A round that did not mark the boat says
    nothing about it, so "in a row" means on the rounds that looked for it.
    """
    final: dict[int, tuple[datetime, str]] = {}
    for round_id, started_at, status, _at, _id in sorted(marks, key=lambda m: (m[1], m[3], m[4])):
        final[round_id] = (started_at, status)
    missed: list[datetime] = []
    for started_at, status in sorted(final.values()):
        missed = [*missed, started_at] if status == "missing" else []
    return missed


# --- reading ---------------------------------------------------------------------------------


async def open_round(
    db: Database, actor: Actor, site_id: int, *, now: datetime
) -> NightRound | None:
    """The actor's unfinished round of the site, begun less than ROUND_OPEN ago."""
    async with db.read() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        return await _open_round(session, actor, site.id, now)


async def _open_round(
    session: AsyncSession, actor: Actor, site_id: int, now: datetime
) -> NightRound | None:
    if actor.id is None:
        return None
    return await session.scalar(
        select(NightRound)
        .where(
            NightRound.site_id == site_id,
            NightRound.walked_by_id == actor.id,
            NightRound.ended_at.is_(None),
            NightRound.started_at > now - ROUND_OPEN,
            NightRound.started_at <= now,
        )
        .order_by(NightRound.started_at.desc(), NightRound.id.desc())
        .limit(1)
    )


async def board(
    db: Database, actor: Actor, site_id: int, round_id: int, *, now: datetime
) -> RoundBoard:
    """The boats present at the site by pier and berth, each with its last mark on the round.

    Audited as a read of the visits shown (as Tonight is).
    """
    async with db.read() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        walked = await _walkers_round(session, actor, site.id, round_id)
        present = list(
            await session.scalars(
                select(Visit).where(
                    Visit.site_id == site.id,
                    Visit.kind == "vessel",
                    visit_status_sql.present_at(now),
                )
            )
        )
        marks = last_marks(
            await session.scalars(select(RoundMark).where(RoundMark.round_id == walked.id))
        )
    boats = [Boat(visit=v, mark=marks.get(v.id)) for v in present]
    counts = counts_of({b.visit.id: b.mark for b in boats if b.mark is not None})
    counts["unmarked"] = sum(1 for b in boats if b.mark is None)
    await audit.log(
        db, actor, "round_viewed", at=now, site_id=site.id, object_type="round",
        object_id=walked.id, object_ids=[v.id for v in present],
    )  # fmt: skip
    return RoundBoard(site=site, round=walked, piers=group_by_pier(boats), counts=counts)


async def recent_rounds(
    db: Database, actor: Actor, site_id: int, *, limit: int = 10
) -> list[RoundSummary]:
    """The site's last rounds, newest first, with how many boats each saw, missed and found."""
    async with db.read() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        rounds = list(
            await session.scalars(
                select(NightRound)
                .where(NightRound.site_id == site.id)
                .order_by(NightRound.started_at.desc(), NightRound.id.desc())
                .limit(limit)
            )
        )
        by_round: dict[int, list[RoundMark]] = defaultdict(list)
        if rounds:
            for mark in await session.scalars(
                select(RoundMark).where(RoundMark.round_id.in_([r.id for r in rounds]))
            ):
                by_round[mark.round_id].append(mark)
    return [RoundSummary(round=r, counts=counts_of(last_marks(by_round[r.id]))) for r in rounds]


async def missed_rounds(db: Database, actor: Actor, visit_id: int) -> list[datetime]:
    """The starts of the rounds on which the visit's boat was not there since it was last seen."""
    async with db.read() as session:
        visit = await scoped_visit(session, actor, visit_id, VIEW)
        rows = await session.execute(
            select(
                RoundMark.round_id,
                NightRound.started_at,
                RoundMark.status,
                RoundMark.marked_at,
                RoundMark.id,
            )
            .join(NightRound, NightRound.id == RoundMark.round_id)
            .where(RoundMark.visit_id == visit.id)
        )
        return trailing_misses([tuple(row) for row in rows])  # type: ignore[misc]


async def not_seen_twice(
    session: AsyncSession, site_id: int, present: Iterable[Visit], *, now: datetime
) -> list[Visit]:
    """Of the visits present, those not there on the last two rounds that looked for them.

    Tonight lists them for check-out. Only the site's rounds of RECENT_ROUNDS are read.
    """
    wanted = {v.id: v for v in present if v.kind == "vessel"}
    if not wanted:
        return []
    rows = await session.execute(
        select(
            RoundMark.visit_id,
            RoundMark.round_id,
            NightRound.started_at,
            RoundMark.status,
            RoundMark.marked_at,
            RoundMark.id,
        )
        .join(NightRound, NightRound.id == RoundMark.round_id)
        .where(NightRound.site_id == site_id, NightRound.started_at >= now - RECENT_ROUNDS)
    )
    by_visit: dict[int, list[tuple[int, datetime, str, datetime, int]]] = defaultdict(list)
    for visit_id, *mark in rows:
        if visit_id in wanted:
            by_visit[visit_id].append(tuple(mark))  # type: ignore[arg-type]
    return [
        wanted[visit_id] for visit_id, marks in by_visit.items() if len(trailing_misses(marks)) >= 2
    ]


# --- writing ---------------------------------------------------------------------------------


async def start_round(db: Database, actor: Actor, site_id: int, *, now: datetime) -> NightRound:
    """Begin a round, or go on with the actor's unfinished one; audited."""
    async with db.write() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        if site.kind != "marina" or actor.id is None:
            raise RoundInvalid({"round": FieldError(MSG_ROUND)})
        going = await _open_round(session, actor, site.id, now)
        if going is not None:
            return going
        walked = NightRound(
            site_id=site.id, started_at=now, walked_by_id=actor.id, walked_by=actor.name[:300]
        )
        session.add(walked)
        await session.flush()
        await audit.record(
            session, actor, "round_started", at=now, site_id=site.id, object_type="round",
            object_id=walked.id,
        )  # fmt: skip
        return walked


async def finish_round(
    db: Database,
    actor: Actor,
    site_id: int,
    round_id: int | None,
    *,
    now: datetime,
    ended_at: str = "",
) -> NightRound:
    """End the round (at the time the phone says, if it kept the tap); audited with its counts.

    Ending a round that has ended changes nothing.
    """
    async with db.write() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        walked = await _walkers_round(session, actor, site.id, round_id, lock=True)
        if walked.ended_at is not None:
            return walked
        if now - walked.started_at > LATE_MARKS:
            raise RoundInvalid({"round": FieldError(MSG_ROUND)})
        walked.ended_at = _tapped_at(ended_at, walked, now)
        marks = last_marks(
            await session.scalars(select(RoundMark).where(RoundMark.round_id == walked.id))
        )
        await audit.record(
            session, actor, "round_finished", at=now, site_id=site.id, object_type="round",
            object_id=walked.id, details=counts_of(marks),
        )  # fmt: skip
        return walked


async def mark(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    round_id: int | None,
    visit_id: int | None,
    status: str,
    key: str,
    marked_at: str = "",
    now: datetime,
) -> Marked:
    """One tap: the boat of `visit_id` seen at its berth, or not there. A repeated key returns
    the mark written the first time; the key with another boat or status is refused."""
    key = _key(key)
    async with db.read() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        earlier = await _mark_by_key(session, key)
        walked = await _walkers_round(session, actor, site.id, round_id)
    if earlier is not None:
        return _replay(earlier, walked.id, visit_id, status, found=False)
    if status not in ROUND_MARKS:
        raise RoundInvalid({"status": FieldError(MSG_CHOICE)})
    at = _tapped_at(marked_at, walked, now)
    _still_open(walked, at)
    try:
        async with db.write() as session:
            visit = None
            if visit_id is not None:
                visit = await session.scalar(
                    select(Visit).where(
                        Visit.id == visit_id, Visit.site_id == site.id, Visit.kind == "vessel"
                    )
                )
            if visit is None:
                raise RoundInvalid({"visit": FieldError(MSG_VISIT)})
            written = await _write_mark(
                session, actor, walked, visit, status=status, found=False, key=key, at=at,
                now=now,
            )  # fmt: skip
    except IntegrityError:
        # The same tap sent twice at once: the other one was first.
        return await _replayed(db, key, walked.id, visit_id, status, found=False)
    return Marked(mark=written, replayed=False)


async def add_found(
    db: Database,
    actor: Actor,
    site_id: int,
    *,
    round_id: int | None,
    form: Mapping[str, str],
    key: str,
    marked_at: str = "",
    now: datetime,
    watchlist_key: str = "",
) -> Marked:
    """A boat found at a berth that is not in the register: a walk-in of source `round`
    (name, registration or MMSI, berth; "?" for its guest until the desk completes it),
    marked seen on the round. The key makes both the visit and the mark once."""
    key = _key(key)
    async with db.read() as session:
        site = await scoped_site(session, actor, WALK, site_id=site_id)
        earlier = await _mark_by_key(session, key)
        walked = await _walkers_round(session, actor, site.id, round_id)
    if earlier is not None:
        return _replay(earlier, walked.id, None, "seen", found=True)
    at = _tapped_at(marked_at, walked, now)
    _still_open(walked, at)
    values = {name: (form.get(name) or "").strip() for name in FOUND_FIELDS}
    if not values["berth"]:
        # The walk-in's own checks first, so that every mistake is shown at once.
        errors = _found_errors(site, values, at, now)
        raise RoundInvalid({**errors, "berth": FieldError(MSG_BERTH)})
    try:
        visit = await walk_ins.create_visit(
            db, actor, site.id, _walk_in_form(site, values, key, at), now=now, source="round",
            watchlist_key=watchlist_key,
        )  # fmt: skip
    except VisitInvalid as invalid:
        raise RoundInvalid(_found_only(invalid.errors)) from None
    try:
        async with db.write() as session:
            written = await _write_mark(
                session, actor, walked, visit, status="seen", found=True, key=key, at=at,
                now=now, typed={"vessel_name": values["vessel_name"], "berth": values["berth"]},
            )  # fmt: skip
    except IntegrityError:
        return await _replayed(db, key, walked.id, None, "seen", found=True)
    return Marked(mark=written, replayed=False)


# --- the parts ---------------------------------------------------------------------------------


async def _walkers_round(
    session: AsyncSession, actor: Actor, site_id: int, round_id: int | None, *, lock: bool = False
) -> NightRound:
    """The round, if it is of this site and the actor walks it; else a RoundInvalid."""
    walked = None
    if round_id is not None and actor.id is not None:
        stmt = select(NightRound).where(
            NightRound.id == round_id,
            NightRound.site_id == site_id,
            NightRound.walked_by_id == actor.id,
        )
        walked = await session.scalar(stmt.with_for_update() if lock else stmt)
    if walked is None:
        raise RoundInvalid({"round": FieldError(MSG_ROUND)})
    return walked


def _still_open(walked: NightRound, at: datetime) -> None:
    """A mark belongs to a round that has not ended, or was made before it ended (it waited
    on the phone), and comes within LATE_MARKS of the round's start."""
    ended = walked.ended_at is not None and at > walked.ended_at
    if ended or at - walked.started_at > LATE_MARKS:
        raise RoundInvalid({"round": FieldError(MSG_ROUND)})


def _key(key: str) -> str:
    """The tap's idempotency key; a missing or overlong one gets a fresh key (no replays)."""
    return key if key and len(key) <= 64 else new_idempotency_key()


def _tapped_at(value: str, walked: NightRound, now: datetime) -> datetime:
    """When the tap was made, as the phone says (ISO 8601), kept between the round's start and
    now; now when the phone said nothing or nothing readable."""
    try:
        at = datetime.fromisoformat(value.strip()) if value and len(value) <= 40 else None
    except ValueError:
        at = None
    if at is None:
        return now
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return min(max(at, walked.started_at), now)


async def _mark_by_key(session: AsyncSession, key: str) -> RoundMark | None:
    return await session.scalar(select(RoundMark).where(RoundMark.idempotency_key == key))


def _replay(
    earlier: RoundMark, round_id: int, visit_id: int | None, status: str, *, found: bool
) -> Marked:
    same = (
        earlier.round_id == round_id
        and earlier.found == found
        and earlier.status == status
        and (visit_id is None or earlier.visit_id == visit_id)
    )
    if not same:
        raise RoundInvalid({"idempotency_key": FieldError(MSG_KEY_REUSED)})
    return Marked(mark=earlier, replayed=True)


async def _replayed(
    db: Database, key: str, round_id: int, visit_id: int | None, status: str, *, found: bool
) -> Marked:
    async with db.read() as session:
        earlier = await _mark_by_key(session, key)
    if earlier is None:  # not a repeat after all: a constraint the form cannot explain
        raise RoundInvalid({"idempotency_key": FieldError(MSG_KEY_REUSED)})
    return _replay(earlier, round_id, visit_id, status, found=found)


async def _write_mark(
    session: AsyncSession,
    actor: Actor,
    walked: NightRound,
    visit: Visit,
    *,
    status: str,
    found: bool,
    key: str,
    at: datetime,
    now: datetime,
    typed: Mapping[str, Any] | None = None,
) -> RoundMark:
    """The mark and its audit event, in one transaction. The event is about the visit (its
    history shows it); what was typed on the pier (audit.PERSONAL) goes to the detail record."""
    values = {
        "round_id": walked.id, "visit_id": visit.id, "status": status, "found": found,
        "marked_at": at, "received_at": now, "idempotency_key": key,
    }  # fmt: skip
    mark_id = await session.scalar(insert(RoundMark).values(**values).returning(RoundMark.id))
    await audit.record(
        session, actor, f"round_marked_{status}", at=now, site_id=walked.site_id,
        object_type="visit", object_id=visit.id,
        details={"round_id": walked.id, "found": found, "marked_at": at.isoformat(),
                 **(typed or {})},
    )  # fmt: skip
    return RoundMark(id=mark_id, **values)


def _walk_in_form(site: Site, values: Mapping[str, str], key: str, at: datetime) -> dict[str, str]:
    """The walk-in form of a boat found on the round: arrived when found, expected to leave the
    next day at noon (as the walk-in form proposes for a boat)."""
    tz = site_tz(site)
    local = at.astimezone(tz)
    departure = datetime.combine(local.date() + timedelta(days=1), time(12), tz)
    return {
        **values,
        "kind": "vessel",
        "guest_name": UNKNOWN,
        "residence": UNKNOWN,
        "persons": "1",
        "arrived_at": local.strftime("%Y-%m-%dT%H:%M:%S"),
        "expected_departure_at": departure.strftime("%Y-%m-%dT%H:%M"),
        "idempotency_key": key,
    }


def _found_errors(
    site: Site, values: Mapping[str, str], at: datetime, now: datetime
) -> dict[str, FieldError]:
    """The walk-in's complaints about a found boat's fields, without writing anything."""
    form = _walk_in_form(site, {**values, "berth": "-"}, "", at)
    _data, errors = validate_checkin(
        form, kind="vessel", allowed_kinds=site.visit_kinds, now=now, tz=site_tz(site)
    )
    return _found_only(errors)


def _found_only(errors: Mapping[str, FieldError]) -> dict[str, FieldError]:
    """The errors of the found form's own fields; anything else is the round's business."""
    shown = {k: v for k, v in errors.items() if k in FOUND_FIELDS}
    if len(shown) < len(errors):
        shown.setdefault("round", FieldError(MSG_ROUND))
    return shown
