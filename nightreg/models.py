"""The tables: sites, check-in points, visits, staff users, their sessions and tokens, the audit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false, text

from nightreg.db import Base
from nightreg.vocabulary import KINDS_BY_SITE_KIND


class Site(Base):
    __tablename__ = "site"
    __table_args__ = (CheckConstraint("kind IN ('marina', 'business_park')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    municipality: Mapped[str] = mapped_column(String(120), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    # Shown in the privacy notice: whom a visitor asks about their data.
    contact: Mapped[str] = mapped_column(String(200), default="")
    # Per-site overrides of rule thresholds, JSON: {"night_movement": {"count": 3}}.
    # A rule's defaults (nightreg.rules) hold for every threshold not named here.
    rule_thresholds: Mapped[dict[str, dict[str, int]]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    # Branding (nightreg.services.branding): the kiosk's, the confirmation's and the poster's
    # accent colour ("#1a5fb4", dark enough for white text), and the version of the logo in
    # `site_logo` (a hash of its bytes: the logo's URL changes with it, so it can be cached).
    accent_colour: Mapped[str | None] = mapped_column(String(7), nullable=True)
    logo_version: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The site's usual hours ("HH:MM", local): an imported date without a time takes them.
    usual_arrival_time: Mapped[str] = mapped_column(
        String(5), default="14:00", server_default="14:00"
    )
    usual_departure_time: Mapped[str] = mapped_column(
        String(5), default="12:00", server_default="12:00"
    )
    # The import's remembered column mapping: a file's header (normalised) -> a field or "".
    import_mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    # AIS (nightreg.services.ais): off until an admin switches it on with the reference of the
    # data-protection impact assessment (DPIA) that covers it; the harbour area is a circle
    # (centre and radius) or a polygon (its corners as JSON, [[lat, lon], ...]), never both.
    ais_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ais_dpia_reference: Mapped[str] = mapped_column(String(200), default="", server_default="")
    ais_area_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    ais_area_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    ais_area_radius_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ais_area_polygon: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Gate cameras (issue 19): sightings are refused until an admin switches them on, which
    # needs the reference of the DPIA that covers them (nightreg.services.sightings).
    cameras_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cameras_dpia_reference: Mapped[str] = mapped_column(String(100), default="", server_default="")

    points: Mapped[list[CheckinPoint]] = relationship(back_populates="site", lazy="raise")

    @property
    def visit_kinds(self) -> tuple[str, ...]:
        return KINDS_BY_SITE_KIND[self.kind]


class SiteLogo(Base):
    """A site's logo as the server re-encoded it (PNG or JPEG, no metadata), in the database:
    every instance serves it, and a backup holds it. Apart from `site` so that loading a site
    never loads the image."""

    __tablename__ = "site_logo"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    media_type: Mapped[str] = mapped_column(String(20))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class CheckinPoint(Base):
    """A QR code on a wall: its URL carries `token`; rotating the token kills the old poster."""

    __tablename__ = "checkin_point"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    # A tablet at the office: no "remember me", and the page resets itself after each visitor.
    kiosk_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)

    site: Mapped[Site] = relationship(back_populates="points", lazy="raise")


class Visit(Base):
    """One register entry. Column names are the vocabulary of forms, API and exports."""

    __tablename__ = "visit"
    __table_args__ = (
        CheckConstraint("kind IN ('vessel', 'vehicle', 'stay')", name="kind"),
        CheckConstraint("source IN ('kiosk', 'staff', 'api', 'round')", name="source"),
        CheckConstraint("persons BETWEEN 1 AND 99", name="persons"),
        # Who is present at a site now: the partial index holds only visits not yet departed.
        Index(
            "ix_visit_present",
            "site_id",
            "arrived_at",
            sqlite_where=Column("departed_at").is_(None),
            postgresql_where=Column("departed_at").is_(None),
        ),
        # The visits of one boat, car or person, in time order (rules follow subjects). The
        # scan groups the whole register by subject with departure and site too: covering
        # those, the index is all SQLite reads (migration 0004 widened both).
        Index("ix_visit_subject_scan", "subject_key", "arrived_at", "departed_at", "site_id"),
        Index("ix_visit_mmsi_scan", "mmsi", "arrived_at", "departed_at", "site_id"),
        # The register of a site for a date range (search, print, export).
        Index("ix_visit_site_arrived", "site_id", "arrived_at"),
        # The incremental scan: what changed since the last one, and the other visits of a
        # boat name just seen (identity_change).
        Index("ix_visit_updated_at", "updated_at"),
        Index("ix_visit_vessel_name", "vessel_name"),
        # The register search (`search_key LIKE '%fragment%'`) on PostgreSQL: a trigram GIN
        # index (pg_trgm, migration 0003) finds a rare fragment without reading the whole
        # site. SQLite has no such index; there the migration and this declaration do nothing.
        Index(
            "ix_visit_search_trgm",
            "search_key",
            postgresql_using="gin",
            postgresql_ops={"search_key": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="RESTRICT"))
    point_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkin_point.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(10))
    arrived_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    expected_departure_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    departed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    persons: Mapped[int] = mapped_column(Integer)
    guest_name: Mapped[str] = mapped_column(String(100))
    residence: Mapped[str] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    id_document_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    berth: Mapped[str | None] = mapped_column(String(20), nullable=True)
    vessel_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    registration: Mapped[str | None] = mapped_column(String(32), nullable=True)
    mmsi: Mapped[str | None] = mapped_column(String(9), nullable=True)
    flag: Mapped[str | None] = mapped_column(String(2), nullable=True)
    vessel_type: Mapped[str | None] = mapped_column(String(12), nullable=True)
    length_m: Mapped[Decimal | None] = mapped_column(Numeric(4, 1), nullable=True)
    last_port: Mapped[str | None] = mapped_column(String(80), nullable=True)
    next_port: Mapped[str | None] = mapped_column(String(80), nullable=True)
    plate: Mapped[str | None] = mapped_column(String(16), nullable=True)
    plate_country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    vehicle_type: Mapped[str | None] = mapped_column(String(12), nullable=True)
    unit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    company: Mapped[str | None] = mapped_column(String(100), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Normalised identity the rules follow across visits and sites: reg:…, mmsi:…, plate:…,
    # person:…
    subject_key: Mapped[str] = mapped_column(String(240))
    # Names and identifiers folded for the register search (validation.search_key).
    search_key: Mapped[str] = mapped_column(String(400), default="")
    # The private link's token is shown once to the visitor; only its SHA-256 is kept.
    private_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # From the form: a double click or a retried request finds the visit made the first time.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC)

    site: Mapped[Site] = relationship(lazy="raise")


class PossibleDuplicate(Base):
    """A second open visit of a subject that was already present at the site when it was
    written (nightreg.services.presence): kept, marked, until staff merge the two or keep
    both. The mark goes with either visit."""

    __tablename__ = "possible_duplicate"

    visit_id: Mapped[int] = mapped_column(
        ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True
    )
    # The open visit it doubles (the earliest of that subject present at the time).
    duplicate_of_id: Mapped[int] = mapped_column(
        ForeignKey("visit.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class VisitMerge(Base):
    """A visit merged into another by staff (a possible duplicate resolved as one stay).

    The merged visit's row is gone; this keeps what still points at it: its private link
    (the visitor's token resolves to the visit it was merged into), its reference and its id
    (its audit events stay under that id; the visit's history reads them from here).
    """

    __tablename__ = "visit_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    # Where the merged visit went; a later merge of that one moves these rows along.
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"), index=True)
    merged_visit_id: Mapped[int] = mapped_column(Integer, unique=True)
    merged_reference: Mapped[str] = mapped_column(String(16))
    private_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC)


class VisitNote(Base):
    """A staff note on a visit ("paid for two nights", "left the key at the office")."""

    __tablename__ = "visit_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC)
    author: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)


class Sighting(Base):
    """A gate camera's read of a number plate at a site, going in or out (issue 19).

    Posted by the camera system with a `sensor` token (nightreg.services.sightings). `plate` is
    as the camera sent it; `subject_key` is the plate's key as a vehicle visit has it
    ("plate:AB123C"), which matches a sighting to the register. Unique per site, camera, time
    and plate key: a repeated post stores nothing new. Personal data: a sighting that no visit
    covers goes after 28 days, one that a visit covers lives as long as that visit
    (nightreg.services.retention).
    """

    __tablename__ = "sighting"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        UniqueConstraint("site_id", "camera", "seen_at", "subject_key"),
        # A plate's sightings at a site in time order (the rules, matching to visits) ...
        Index("ix_sighting_site_subject_seen", "site_id", "subject_key", "seen_at"),
        # ... a site's sightings of a night (Tonight) or past retention (the purge) ...
        Index("ix_sighting_site_seen", "site_id", "seen_at"),
        # ... and what arrived since the last scan.
        Index("ix_sighting_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    camera: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    direction: Mapped[str] = mapped_column(String(3))
    plate: Mapped[str] = mapped_column(String(20))
    subject_key: Mapped[str] = mapped_column(String(240))
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class NightRound(Base):
    """The harbour master's evening walk along the piers: who walked it, and from when to when.

    Its marks (RoundMark) say which boats were at their berth. A round left unfinished keeps
    `ended_at` empty; the page offers a new one after ROUND_OPEN_HOURS (services.rounds).
    """

    __tablename__ = "night_round"
    __table_args__ = (Index("ix_night_round_site_started", "site_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # Who walked it: the account (gone if the account is deleted) and its name as shown.
    walked_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
    )
    walked_by: Mapped[str] = mapped_column(String(300))


class RoundMark(Base):
    """One tap on the round: a boat seen at its berth, or not there (or found and added).

    `idempotency_key` comes with the tap from the phone (the page's form, or the round's
    script when the mark waited for a connection): sent again, it finds the first mark.
    Marks go with their visit (the purge, an erasure) and with their round.
    """

    __tablename__ = "round_mark"
    __table_args__ = (
        CheckConstraint("status IN ('seen', 'missing')", name="status"),
        Index("ix_round_mark_round", "round_id", "visit_id"),
        Index("ix_round_mark_visit", "visit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("night_round.id", ondelete="CASCADE"))
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10))
    # The boat was not in the register: it was added on this round (a visit of source round).
    found: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the tap was made (the phone's clock, kept within the round), and when it arrived.
    marked_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)


user_site = Table(
    "user_site",
    Base.metadata,
    Column("user_id", ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("site.id", ondelete="CASCADE"), primary_key=True),
)


class User(Base):
    """A staff account, scoped to sites (an admin sees all)."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'harbour_master', 'security', 'analyst', 'auditor')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # An admin-initiated reset: the one-time link's token is shown once; only its hash is kept.
    reset_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    reset_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # Two-factor sign-in (TOTP): the secret encrypted under a key derived from the secret key.
    # A secret without totp_enabled_at is an enrolment not yet confirmed with a code.
    totp_secret: Mapped[str | None] = mapped_column(String(300), nullable=True)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # The last time step (unix time // 30) whose code was accepted: no code counts twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The unused recovery codes' keyed hashes, a JSON list; a used code leaves the list.
    # Text, not JSON: spending a code compares the whole stored list in SQL (a compare-and-
    # swap, so a code counts once), and PostgreSQL's json type has no equality operator.
    recovery_codes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The site the navigation opens on: the one the account chose last in the site switcher.
    chosen_site_id: Mapped[int | None] = mapped_column(
        ForeignKey("site.id", ondelete="SET NULL"), nullable=True
    )

    sites: Mapped[list[Site]] = relationship(secondary=user_site, lazy="raise")


class StaffSession(Base):
    """A signed-in browser. The cookie carries a random id; the table keeps only its hash."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    last_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    address: Mapped[str] = mapped_column(String(64), default="")


class SignInFailure(Base):
    """A failed sign-in, counted per account and per address to slow down guessing."""

    __tablename__ = "sign_in_failure"
    __table_args__ = (
        Index("ix_sign_in_failure_email_at", "email", "at"),
        Index("ix_sign_in_failure_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTimeUTC)


api_token_site = Table(
    "api_token_site",
    Base.metadata,
    Column("token_id", ForeignKey("api_token.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", ForeignKey("site.id", ondelete="CASCADE"), primary_key=True),
)


class ApiToken(Base):
    """A bearer token for the JSON API, with a role and sites like a user; kept as a hash."""

    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'harbour_master', 'security', 'analyst', 'auditor', 'sensor')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)

    sites: Mapped[list[Site]] = relationship(secondary=api_token_site, lazy="raise")


class AuditEvent(Base):
    """One line of the audit trail. Append-only; `hash` chains it to the line before.

    Site and object ids are plain numbers, not foreign keys: the trail outlives what it names.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_at", "at"),
        Index("ix_audit_event_actor_at", "actor", "at"),
        Index("ix_audit_event_site_at", "site_id", "at"),
        Index("ix_audit_event_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC)
    # "user:12 jan@haven.nl", "token:3 boekhouding", "cli", "system", "anonymous"
    actor: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    object_type: Mapped[str] = mapped_column(String(20), default="")
    # The one object an event is about (a visit's history is looked up by it) ...
    object_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # ... or, for a page or an export, all the objects it showed, as JSON.
    # object_ids and details stay Text, not JSON: the event's hash covers their exact
    # canonical text (nightreg.services.audit), which a JSON column would re-serialise.
    object_ids: Mapped[str] = mapped_column(Text, default="[]")
    # JSON: before and after of a change, a reason, counts, filters.
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The audit key the hash was made with (HMAC-SHA256); "sha256-legacy" for the events
    # written before 0009 with the keyless formula (valid only up to the anchor's
    # keyless_through_id).
    key_id: Mapped[str] = mapped_column(String(40), server_default="sha256-legacy")
    # The keyed hash of the event's detail record (its personal values), "" without one.
    detail_hash: Mapped[str] = mapped_column(String(64), server_default="")
    # About a restricted (watchlist) flag, or naming a restricted rule: for the auditor only.
    # Set when the event is written, so that it stays hidden once the flag itself is purged.
    # Not part of the hash: it says who may read the event, not what happened.
    restricted: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class AuditDetail(Base):
    """The personal values of one audit event (before/after, search terms, reasons, e-mails).

    Kept apart from the chained event so that they can be erased with what they describe
    (the purge, an early erasure, their own period for searches) while the chain still
    verifies: the event keeps a keyed hash of the body, the erased row keeps who erased it.
    """

    __tablename__ = "audit_detail"
    __table_args__ = (
        Index("ix_audit_detail_object", "object_type", "object_id"),
        Index("ix_audit_detail_kind_at", "kind", "at"),
    )

    # The event's id: one detail record per event at most.
    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTimeUTC)
    # "object": erased with the visit, flag or observation it describes; "search": after its
    # own period; "event": lives as long as its event.
    kind: Mapped[str] = mapped_column(String(10))
    object_type: Mapped[str] = mapped_column(String(20), default="")
    object_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # JSON of the personal values; None once erased.
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    erased_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # What erased it: "purge <time>" (the purge's receipt) or "subject_erased <time>".
    erased_by: Mapped[str] = mapped_column(String(60), default="")


class Flag(Base):
    """One finding of a rule: the visits it rests on, a score, a reason, and its review.

    `dedupe_key` (rule, subject, start of the window) is unique, so two scans that find the
    same thing at the same moment cannot both create it; a scan that finds more of it adds
    the new visits to the flag it already has (through `flag_visit`).
    """

    __tablename__ = "flag"
    __table_args__ = (
        CheckConstraint(
            "status IN ('open', 'watching', 'dismissed', 'forwarded', 'expired')", name="status"
        ),
        # The review queue: a site's open flags, newest evidence first.
        Index("ix_flag_site_status_updated", "site_id", "status", "updated_at"),
        Index("ix_flag_rule_subject", "rule", "subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(32))
    # Whom or what the finding follows: a subject key, "unit:…", "site:…" or "visit:…".
    subject: Mapped[str] = mapped_column(String(240))
    dedupe_key: Mapped[str] = mapped_column(String(320), unique=True)
    window_start: Mapped[datetime] = mapped_column(DateTimeUTC)
    window_end: Mapped[datetime] = mapped_column(DateTimeUTC)
    score: Mapped[int] = mapped_column(Integer)
    # The sentence in English (exports, the hub) and its parameters (pages translate it).
    reason: Mapped[str] = mapped_column(Text)
    reason_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # JSON: the thresholds the rule applied when it last found this.
    thresholds: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="open")
    # Watchlist hits are shown only to analysts: a hub list must not tip anyone off.
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    reviewed_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    review_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    observation_id: Mapped[int | None] = mapped_column(
        ForeignKey("observation.id", ondelete="SET NULL"), nullable=True
    )


flag_visit = Table(
    "flag_visit",
    Base.metadata,
    Column("flag_id", ForeignKey("flag.id", ondelete="CASCADE"), primary_key=True),
    Column("visit_id", ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_flag_visit_visit_id", "visit_id"),
)


class Observation(Base):
    """What staff saw, on a visit or at a place on the site, from the indicator checklist."""

    __tablename__ = "observation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visit.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # A berth, quay, unit or building when the observation is not about one visit.
    location: Mapped[str] = mapped_column(String(120), default="")
    # The indicator codes (nightreg.services.observations.INDICATORS).
    indicators: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    observed_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    author: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class AisMovement(Base):
    """An MMSI entering or leaving a site's harbour area, as AIS showed it (never a position).

    `visit_id` is the register's visit of that MMSI at the site, once one matches; the
    movement then lives as long as its visit (ON DELETE CASCADE), an unmatched one 28 days.
    """

    __tablename__ = "ais_movement"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        # One transition per MMSI and time at a site: a replayed log adds nothing twice.
        UniqueConstraint("site_id", "mmsi", "at", "direction", name="uq_ais_movement_once"),
        # Where each MMSI is now (Tonight), and matching a new visit to earlier movements.
        Index("ix_ais_movement_site_mmsi_at", "site_id", "mmsi", "at"),
        # The incremental scan: movements written or matched since the last scan.
        Index("ix_ais_movement_recorded_at", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    mmsi: Mapped[str] = mapped_column(String(9))
    direction: Mapped[str] = mapped_column(String(3))
    at: Mapped[datetime] = mapped_column(DateTimeUTC)
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("visit.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # When the movement was written, or last matched to a visit.
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class WatchlistEntry(Base):
    """One keyed hash (HMAC-SHA256) of a normalised identifier, from the hub; never plain text."""

    __tablename__ = "watchlist_entry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC, index=True)
    # The hub's reference for the list this entry came in (for the analyst), not the value.
    list_ref: Mapped[str] = mapped_column(String(120), default="")
    imported_at: Mapped[datetime] = mapped_column(DateTimeUTC)


class JobRun(Base):
    """One run of a scheduled job: when, how it ended, what it counted, what went wrong."""

    __tablename__ = "job_run"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
        Index("ix_job_run_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    # "schedule", "cli" or "user:12 …": who started it.
    # (`counts` is JSON; `error` the exception's last line when it failed.)
    trigger: Mapped[str] = mapped_column(String(300), default="schedule")
    holder: Mapped[str] = mapped_column(String(120), default="")
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="running")
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobLease(Base):
    """Who may run a job now: taken by compare-and-swap, and free again after `expires_at`."""

    __tablename__ = "job_lease"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120), default="")
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    # The scheduled time of the last run that took the lease: two schedulers firing for the
    # same slot run it once, even when the first has finished before the second asks.
    last_slot: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)


class SharingAgreement(Base):
    """What may be passed to the hub (DESIGN §3): which rules, which fields, for how long.

    `rules`, `fields` and `auto_rules` are JSON lists of codes (nightreg.services.agreements
    holds the fixed list of fields). An agreement is in force from `valid_from` to
    `valid_until` (dates in the installation's time zone, both inclusive) unless an admin
    ended it earlier (`ended_at`). Agreements are never deleted: a signal names the one it
    was sent under.
    """

    __tablename__ = "sharing_agreement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(200))
    # The partners' own number for the agreement; the hub sees it in every signal.
    reference: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Rules whose flags go out without a staff review (a watchlist hit); a subset of `rules`.
    auto_rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    # How long the sender keeps forwarded flags and their signals (the retention job).
    keep_days: Mapped[int] = mapped_column(Integer, default=180)
    # Every signal sent under it carries the newest signed checkpoint of the audit chain, so
    # that the hub holds a copy the sender's database owner cannot rewrite (issue 17, finding 4).
    share_audit_checkpoints: Mapped[bool] = mapped_column(
        Boolean, server_default=false(), default=False
    )
    # The newest major version of the signal format (`nightreg.signal/N`) its hub accepts:
    # a signal is built in the newest version the code has that is not above it (issue 18).
    max_schema: Mapped[int] = mapped_column(Integer, server_default=text("1"), default=1)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    created_by: Mapped[str] = mapped_column(String(300), default="")
    ended_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Signal(Base):
    """One forwarded flag in the outbox, delivered to the hub (pushed, or pulled by it).

    `uid` is the stable signal id the hub sees and the Idempotency-Key of every attempt;
    `body` holds the exact bytes sent, fixed when the flag was forwarded, so that a resend
    is byte for byte the first send. Status: `pending` (to be sent; `next_attempt_at` says
    when), `delivered` (the hub answered 2xx, or acknowledged a pull), `failed` (the hub
    refused it, or seven days of retries ran out; `last_error` says why).
    """

    __tablename__ = "signal"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        # The dispatcher's query: pending signals that are due.
        Index("ix_signal_status_next", "status", "next_attempt_at"),
        Index("ix_signal_site_created", "site_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flag.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[int] = mapped_column(
        ForeignKey("sharing_agreement.id", ondelete="RESTRICT"), index=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(32))
    # Text, not JSON: these exact bytes are what the hub receives and what is signed.
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    forwarded_by: Mapped[str] = mapped_column(String(300), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    # "push" (the hub answered our POST) or "pull" (the hub acknowledged it over the API).
    delivered_by: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # Failed because its agreement was no longer in force when it was due: it never leaves,
    # by push or by pull, and is never sent again.
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When the hub acknowledged it although it was withheld: it stays withheld (nothing was
    # handed out), and a pull of unacknowledged signals stops listing it.
    withheld_seen_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)


class RetentionPolicy(Base):
    """A site's own retention periods; a column left empty takes the installation's default.

    The defaults live in the settings (NIGHTREG_RETENTION_*), so that changing one reaches
    every site that did not choose otherwise. Audit events, job runs and aggregates are kept
    for the whole installation, not per site.
    """

    __tablename__ = "retention_policy"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    # Days after departure (or expected departure, for a visit never checked out).
    visit_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Days an open (or watched) flag may live after it was raised.
    open_flag_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Days after a dismissal (or after a flag expired).
    dismissed_flag_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    updated_by: Mapped[str] = mapped_column(String(300), default="")


class LegalHold(Base):
    """A freeze on deletion for a case: named visits, everything of one subject, or a site.

    A hold is in force until it is released or its `until` day (inclusive, installation time
    zone) has passed. Holds are never deleted: the list is the privacy officer's record.
    """

    __tablename__ = "legal_hold"
    __table_args__ = (
        CheckConstraint("scope IN ('visits', 'subject', 'site')", name="scope"),
        Index("ix_legal_hold_subject_key", "subject_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    case_reference: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[date | None] = mapped_column(Date, nullable=True)
    # scope "site": the site; scope "subject": the site it is limited to, or none for all.
    site_id: Mapped[int | None] = mapped_column(
        ForeignKey("site.id", ondelete="RESTRICT"), nullable=True
    )
    subject_key: Mapped[str | None] = mapped_column(String(240), nullable=True)
    # scope "visits": how many were named (the links go when an ended hold's visits are purged).
    visit_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    created_by: Mapped[str] = mapped_column(String(300), default="")
    released_at: Mapped[datetime | None] = mapped_column(DateTimeUTC, nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    release_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


legal_hold_visit = Table(
    "legal_hold_visit",
    Base.metadata,
    Column("hold_id", ForeignKey("legal_hold.id", ondelete="CASCADE"), primary_key=True),
    Column("visit_id", ForeignKey("visit.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_legal_hold_visit_visit_id", "visit_id"),
)


class VisitAggregate(Base):
    """Non-personal counts per site, local day and kind, made from visits before they go.

    `visits` and `persons` count arrivals on `day`; `overnight_stays` counts persons staying
    the night that begins on `day` (persons × nights, split by night, so a stay across a month
    end counts in both months). The tourist-tax return adds these to the live register.
    """

    __tablename__ = "visit_aggregate"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("site.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    overnight_stays: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditAnchor(Base):
    """Where the audit chain starts after the purge removed its oldest events.

    The first kept event links to `prev_hash`, the hash of the last removed one; verification
    starts there instead of at the genesis hash. One row, written in the same transaction as
    the deletion (and the deletion's receipt names it too).
    """

    __tablename__ = "audit_anchor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The events with ids up to here were removed; the next one links to prev_hash.
    removed_through_id: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    removed_count: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(DateTimeUTC)
    # Events up to this id were written with the keyless SHA-256 formula (before 0009); a
    # signed checkpoint repeats it, so that moving it up is caught.
    keyless_through_id: Mapped[int] = mapped_column(Integer, server_default="0")


class RateCount(Base):
    """Requests counted against a rate limit in one fixed window (nightreg.ratelimit).

    Only used on PostgreSQL, where every app instance counts here; on SQLite (one process) the
    counts stay in memory. The key names what is limited without personal data: a client
    address only as a keyed hash. Rows of windows that are over are deleted as the limiter
    goes; on PostgreSQL the table is UNLOGGED (a crash may forget the counts, nothing else).
    """

    __tablename__ = "rate_count"

    # The window first: the deletion of finished windows walks the primary key's index.
    window_start: Mapped[datetime] = mapped_column(DateTimeUTC, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
