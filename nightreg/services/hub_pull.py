"""The hub's side of the outbox: signals as they were (or will be) sent, and pulls acknowledged.

An analyst works for the hub, so their scope is what the sites forwarded to it: every signal,
of every site, whatever sites the account is assigned to (signals.view is a global
permission). What they see of a signal is its body, the exact JSON fixed when the flag was
forwarded under an agreement, plus the outbox's own bookkeeping (status, attempts). Nothing
here reads the visit table: the body is all the hub was ever allowed to get.

Pulling: ids grow with every signal, so `after` (the id of the last signal a client has
seen) pages through the outbox oldest first. Ids are handed out before a transaction
commits, though, so on PostgreSQL a signal may become visible after a younger one was
already pulled. A hub that must not miss any pulls with `unacknowledged` (pending or failed
signals only), acknowledges what it received, and starts each round from the beginning:
acknowledged signals drop out, and a late one is found in the next round.

Withheld signals (their agreement ended before they left; nightreg.services.signals) are
listed and readable with the status `withheld` and without their body: the hub learns that a
signal it may have been waiting for will never come, and nothing of it leaves. Acknowledging
one answers it as `withheld` (never `already`, which means delivered), leaves it withheld, and
notes that the hub has seen it, so that `unacknowledged` stops listing it.

Every read writes its audit event before the data is handed out; an acknowledgement writes
its event in the same transaction as the change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, not_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nightreg.clock import local_midnight
from nightreg.db import Database
from nightreg.i18n import N_
from nightreg.models import SharingAgreement, Signal, Site
from nightreg.rules import RULES
from nightreg.services import audit, signals
from nightreg.services.access import Actor, NotFound

VIEW = "signals.view"
ACK = "signals.ack"

STATUSES = ("pending", "delivered", "failed")
# Not (yet) received by the hub: the dispatcher may still be trying, or it gave up. A withheld
# signal is stored as failed; it counts as unacknowledged until the hub acknowledges it.
UNACKNOWLEDGED = ("pending", "failed")
# The status a withheld signal shows the hub (its stored status stays `failed`).
WITHHELD = "withheld"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_ACK = 500
# A signal id is a UUID (36 characters); anything much longer is not one of ours.
MAX_UID_LENGTH = 64
# The largest id the tables hold (INTEGER); a larger cursor would not even bind on PostgreSQL.
MAX_ID = 2**31 - 1

MSG_SITE = N_("No site has this short name or number.")
MSG_RULE = N_("No rule has this code.")
MSG_STATUS = N_("Please choose pending, delivered or failed.")
MSG_PERIOD = N_("The end date must not be before the start date.")
MSG_LIMIT = N_("Please ask for 1 to %(max)s signals.")
MSG_CURSOR = N_("Please give the number of a signal (its cursor).")
MSG_IDS = N_("Please send 1 to %(max)s signal ids.")
MSG_ID = N_("A signal id has at most %(max)s characters.")
MSG_AGREEMENT = N_("No sharing agreement has this reference.")

_SITE_NUMBER = re.compile(r"^[0-9]{1,9}$")


class PullInvalid(ValueError):
    """A query or an acknowledgement that cannot be done as asked: the field at fault and why.

    `message` is an English msgid with `params` (pages translate it; the API sends it as is).
    """

    def __init__(self, field: str, message: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.params = dict(params or {})

    @property
    def text(self) -> str:
        return self.message % self.params if self.params else self.message


@dataclass(frozen=True)
class SignalQuery:
    """Which signals, and which page of them.

    `site` is a slug or a site's number; `date_from`/`date_to` are local dates (both
    inclusive) on the day the flag was forwarded. Without `newest_first` the page runs oldest
    first from `after`; with it, newest first from `before` (the staff pages).
    """

    site: str | None = None
    rule: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    statuses: tuple[str, ...] = ()  # empty: every status
    after: int | None = None
    before: int | None = None
    newest_first: bool = False
    limit: int = DEFAULT_LIMIT

    def filters(self) -> dict[str, Any]:
        """The query as the audit records it."""
        recorded: dict[str, Any] = {
            "site": self.site or "",
            "rule": self.rule or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "statuses": list(self.statuses),
        }
        if self.after is not None:
            recorded["after"] = self.after
        if self.before is not None:
            recorded["before"] = self.before
        return {k: v for k, v in recorded.items() if v not in ("", [])}


@dataclass(frozen=True)
class SignalRow:
    """One signal as the hub sees it: its body, where it came from, and how far it got.

    A withheld signal has the status `withheld`, an empty body and an empty payload: what it
    would have said never leaves.
    """

    id: int
    uid: str
    created_at: datetime
    site_slug: str
    site_name: str
    rule: str
    status: str
    delivered_by: str | None
    delivered_at: datetime | None
    body: str  # the exact JSON text sent (or to be sent); "" when withheld
    payload: dict[str, Any]  # the same, parsed
    withheld_seen_at: datetime | None = None  # when the hub acknowledged it, withheld

    @property
    def withheld(self) -> bool:
        return self.status == WITHHELD


@dataclass(frozen=True)
class SignalDetail(SignalRow):
    """A signal with the outbox's record of its delivery."""

    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class SignalPage:
    rows: list[SignalRow]
    # The id to pass as `after` (oldest first) or `before` (newest first) for the next page;
    # None when this page is the last.
    next_cursor: int | None


@dataclass(frozen=True)
class Acknowledgement:
    acknowledged: list[str] = field(default_factory=list)  # delivered by this call
    already: list[str] = field(default_factory=list)  # delivered before (pushed or pulled)
    withheld: list[str] = field(default_factory=list)  # never delivered: its agreement ended
    unknown: list[str] = field(default_factory=list)  # no such signal


# --- reading -----------------------------------------------------------------------------


def _payload(body: str) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _check(query: SignalQuery) -> None:
    if not 1 <= query.limit <= MAX_LIMIT:
        raise PullInvalid("limit", MSG_LIMIT, {"max": MAX_LIMIT})
    for name, cursor in (("after", query.after), ("before", query.before)):
        if cursor is not None and not 0 <= cursor <= MAX_ID:
            raise PullInvalid(name, MSG_CURSOR)
    if query.date_from and query.date_to and query.date_to < query.date_from:
        raise PullInvalid("to", MSG_PERIOD)
    if query.rule and query.rule not in RULES:
        raise PullInvalid("rule", MSG_RULE)
    if any(status not in STATUSES for status in query.statuses):
        raise PullInvalid("status", MSG_STATUS)


async def _site(session: AsyncSession, ref: str) -> Site:
    ref = ref.strip()
    site = None
    if _SITE_NUMBER.match(ref):
        site = await session.get(Site, int(ref))
    if site is None and 0 < len(ref) <= 63:
        site = await session.scalar(select(Site).where(Site.slug == ref))
    if site is None:
        raise PullInvalid("site", MSG_SITE)
    return site


def _row(signal: Signal, slug: str, name: str) -> SignalRow:
    if signal.withheld:
        return SignalRow(
            id=signal.id, uid=signal.uid, created_at=signal.created_at, site_slug=slug,
            site_name=name, rule=signal.rule, status=WITHHELD, delivered_by=None,
            delivered_at=None, body="", payload={}, withheld_seen_at=signal.withheld_seen_at,
        )  # fmt: skip
    return SignalRow(
        id=signal.id, uid=signal.uid, created_at=signal.created_at, site_slug=slug,
        site_name=name, rule=signal.rule, status=signal.status,
        delivered_by=signal.delivered_by, delivered_at=signal.delivered_at, body=signal.body,
        payload=_payload(signal.body),
    )  # fmt: skip


def _selected(query: SignalQuery, site_id: int | None, tz: ZoneInfo) -> Select[Signal, str, str]:
    stmt = select(Signal, Site.slug, Site.name).join(Site, Site.id == Signal.site_id)
    if site_id is not None:
        stmt = stmt.where(Signal.site_id == site_id)
    if query.rule:
        stmt = stmt.where(Signal.rule == query.rule)
    if query.statuses:
        stmt = stmt.where(Signal.status.in_(query.statuses))
        if query.statuses == UNACKNOWLEDGED:
            # A withheld signal the hub has acknowledged is not waiting for anything.
            seen = and_(Signal.withheld.is_(True), Signal.withheld_seen_at.is_not(None))
            stmt = stmt.where(not_(seen))
    if query.date_from is not None:
        stmt = stmt.where(Signal.created_at >= local_midnight(query.date_from, tz))
    if query.date_to is not None:
        end = local_midnight(query.date_to + timedelta(days=1), tz)
        stmt = stmt.where(Signal.created_at < end)
    if query.newest_first:
        if query.before is not None:
            stmt = stmt.where(Signal.id < query.before)
        return stmt.order_by(Signal.id.desc())
    if query.after is not None:
        stmt = stmt.where(Signal.id > query.after)
    return stmt.order_by(Signal.id)


async def list_signals(
    db: Database, actor: Actor, query: SignalQuery, *, now: datetime, tz: ZoneInfo | None = None
) -> SignalPage:
    """One page of signals of every site, filtered; the pull is audited as signals_viewed.

    `tz` is the clock of the period's dates (the installation's time zone; UTC if not given).
    Raises PullInvalid for a filter that cannot be used (an unknown site, say).
    """
    actor.require(VIEW)
    _check(query)
    zone = tz or ZoneInfo("UTC")
    # A signal whose agreement ended since it was queued is not handed out, not even pulled.
    await signals.withhold_lapsed(db, now=now)
    async with db.read() as session:
        site = await _site(session, query.site) if query.site else None
        stmt = _selected(query, site.id if site else None, zone).limit(query.limit + 1)
        found = [_row(signal, slug, name) for signal, slug, name in await session.execute(stmt)]
    rows = found[: query.limit]
    next_cursor = rows[-1].id if len(found) > query.limit else None
    await audit.log(
        db, actor, "signals_viewed", at=now, site_id=site.id if site else None,
        object_type="signal", object_ids=[row.id for row in rows],
        details={"filters": query.filters(), "count": len(rows)},
    )  # fmt: skip
    return SignalPage(rows=rows, next_cursor=next_cursor)


def _plausible(uid: str) -> bool:
    return 0 < len(uid) <= MAX_UID_LENGTH


async def get_signal(db: Database, actor: Actor, uid: str, *, now: datetime) -> SignalDetail:
    """One signal by its id (the uid the hub sees), with its delivery; audited."""
    actor.require(VIEW)
    found = None
    if _plausible(uid):
        await signals.withhold_lapsed(db, now=now)
        async with db.read() as session:
            found = (
                await session.execute(
                    select(Signal, Site.slug, Site.name)
                    .join(Site, Site.id == Signal.site_id)
                    .where(Signal.uid == uid)
                )
            ).first()
    if found is None:
        raise NotFound(f"signal {uid[:MAX_UID_LENGTH]}")
    signal, slug, name = found
    row = _row(signal, slug, name)
    await audit.log(
        db, actor, "signal_viewed", at=now, site_id=signal.site_id, object_type="signal",
        object_id=signal.id, details={"uid": signal.uid},
    )  # fmt: skip
    return SignalDetail(
        **{f: getattr(row, f) for f in row.__dataclass_fields__},
        attempts=signal.attempts, next_attempt_at=signal.next_attempt_at,
        last_attempt_at=signal.last_attempt_at, last_status_code=signal.last_status_code,
        last_error=signal.last_error,
    )  # fmt: skip


# --- acknowledging -----------------------------------------------------------------------


def _unique(uids: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for uid in uids:
        seen.setdefault(uid, None)
    return list(seen)


async def acknowledge(
    db: Database, actor: Actor, uids: Sequence[str], *, now: datetime
) -> Acknowledgement:
    """Mark pulled signals delivered (by "pull"); idempotent, and unknown ids only reported.

    A signal delivered before (pushed, or acknowledged earlier) is reported as `already` and
    left as it is. A withheld one is reported as `withheld`, every time, and stays withheld;
    the first acknowledgement notes when the hub saw it. The change is a compare-and-swap on
    the status, so two acknowledgements (or an acknowledgement and the dispatcher) at once
    deliver a signal once.
    """
    actor.require(ACK)
    if not 1 <= len(uids) <= MAX_ACK:
        raise PullInvalid("ids", MSG_IDS, {"max": MAX_ACK})
    if any(not isinstance(uid, str) or len(uid) > MAX_UID_LENGTH for uid in uids):
        raise PullInvalid("ids", MSG_ID, {"max": MAX_UID_LENGTH})
    wanted = _unique(uids)
    # A signal whose agreement ended a moment ago is withheld before it could be delivered.
    await signals.withhold_lapsed(db, now=now)
    async with db.write() as session:
        delivered = (
            await session.execute(
                update(Signal)
                .where(
                    Signal.uid.in_(wanted),
                    Signal.status.in_(UNACKNOWLEDGED),
                    Signal.withheld.is_(False),
                )
                .values(status="delivered", delivered_by="pull", delivered_at=now)
                .returning(Signal.id, Signal.uid)
                .execution_options(synchronize_session=False)
            )
        ).all()
        done = {uid: signal_id for signal_id, uid in delivered}
        await session.execute(
            update(Signal)
            .where(
                Signal.uid.in_(wanted),
                Signal.withheld.is_(True),
                Signal.withheld_seen_at.is_(None),
            )
            .values(withheld_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        rows = await session.execute(
            select(Signal.uid, Signal.withheld).where(Signal.uid.in_(wanted))
        )
        known: dict[str, bool] = {uid: bool(withheld) for uid, withheld in rows}
        result = Acknowledgement(
            acknowledged=[uid for uid in wanted if uid in done],
            already=[uid for uid in wanted if uid in known and uid not in done and not known[uid]],
            withheld=[uid for uid in wanted if known.get(uid)],
            unknown=[uid for uid in wanted if uid not in known],
        )
        await audit.record(
            session, actor, "signals_acknowledged", at=now, object_type="signal",
            object_ids=done.values(),
            details={
                "acknowledged": result.acknowledged, "already": result.already,
                "withheld": result.withheld,
                "unknown": [uid[:MAX_UID_LENGTH] for uid in result.unknown],
            },
        )  # fmt: skip
    return result


async def signal_sites(db: Database, actor: Actor) -> list[Site]:
    """The sites that have forwarded anything, by name (the pages' site filter)."""
    actor.require(VIEW)
    with_signals = select(Signal.site_id).distinct()
    async with db.read() as session:
        return list(
            await session.scalars(select(Site).where(Site.id.in_(with_signals)).order_by(Site.name))
        )


async def payload_schema(db: Database, actor: Actor, reference: str | None) -> dict[str, Any]:
    """The JSON Schema of a payload; for an agreement (by its reference; the newest of that
    reference), the stricter one whose visit item requires that agreement's visit fields."""
    actor.require(VIEW)
    if not reference:
        return signals.schema_for(None)
    async with db.read() as session:
        agreement = await session.scalar(
            select(SharingAgreement)
            .where(SharingAgreement.reference == reference[:100])
            .order_by(SharingAgreement.id.desc())
            .limit(1)
        )
    if agreement is None:
        raise PullInvalid("agreement", MSG_AGREEMENT)
    return signals.schema_for(agreement)


def rule_choices() -> list[str]:
    """Rule codes whose flags can be forwarded (and so can be a signal's rule)."""
    return [code for code, rule in RULES.items() if rule.forwardable]
