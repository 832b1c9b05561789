"""Write the generated parts of docs/privacy.md (or, with --check, say whether they are current).

    python -m docs.privacy_doc           # rewrite every block between generated markers
    python -m docs.privacy_doc --check   # exit 1 when docs/privacy.md differs from the code

A block is the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; the
rest of the file is written by hand. The blocks come from the code: the visit's columns
(nightreg.models.Visit), the permissions (nightreg.services.access), the fields an agreement
may share (nightreg.services.agreements), the retention and backup defaults
(nightreg.settings.Settings) and the rule catalogue (nightreg.rules). A column, permission,
setting or rule the texts below do not describe stops the generator with a message saying what
to add, so the document cannot quietly fall behind; tests/unit/test_privacy_doc.py fails when
the file differs.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: docs/ is sys.path[0], the app is one up
    sys.path.insert(0, str(REPO))

DOC = REPO / "docs" / "privacy.md"
FAIRNESS_TEST = REPO / "tests" / "unit" / "test_rules_fairness.py"
COMMAND = "python -m docs.privacy_doc"


class DocError(Exception):
    """The code has something the document's texts do not describe (or the markers are gone)."""


# --- the visit's columns ---------------------------------------------------------------------

# Every column of nightreg.models.Visit, in the group a privacy officer reads it under.
VISIT_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (title, tuple(names.split()))
    for title, names in (
        ("Guest", "guest_name residence country persons id_document_type"),
        ("Stay", "kind arrived_at expected_departure_at departed_at berth unit company"),
        ("Vessel", "vessel_name registration mmsi flag vessel_type length_m last_port next_port"),
        ("Vehicle", "plate plate_country vehicle_type"),
        ("Contact (optional)", "phone email"),
        ("Notes", "notes"),
        (
            "Kept by the system",
            "id reference site_id point_id source subject_key search_key private_token_hash "
            "idempotency_key request_fingerprint created_at updated_at",
        ),
    )
)
SYSTEM_GROUP = "Kept by the system"
# Words that, as part of a column name, would make the "never collected" sentence untrue.
NEVER_COLUMN_WORDS = frozenset(
    {"bsn", "birth", "dob", "age", "gender", "sex", "ethnicity", "ethnic", "nationality",
     "race", "religion", "number", "photo", "picture"}
)  # fmt: skip


def _visit_texts() -> dict[str, str]:
    from nightreg.validation import MAX_LENGTHS, MAX_PERSONS, MIN_PERSONS
    from nightreg.vocabulary import ID_DOCUMENT_TYPES, KINDS, SOURCES, VEHICLE_TYPES, VESSEL_TYPES

    def one_of(values: Iterable[str]) -> str:
        return ", ".join(f"`{v}`" for v in values)

    return {
        "guest_name": "name of the guest who checks in",
        "residence": "place of residence",
        "country": "country (ISO code), as the visitor chooses it; reported, never scored",
        "persons": f"number of persons ({MIN_PERSONS} to {MAX_PERSONS})",
        "id_document_type": (
            f"type of identity document shown ({one_of(ID_DOCUMENT_TYPES)}); never its number"
        ),
        "kind": f"what checks in: {one_of(KINDS)}",
        "arrived_at": "arrival, date and time",
        "expected_departure_at": "expected departure",
        "departed_at": "departure, once checked out",
        "berth": "berth (marinas)",
        "unit": "business-park unit visited or stayed in",
        "company": "company visited",
        "vessel_name": "name of the boat",
        "registration": "registration or hull number",
        "mmsi": "MMSI, the boat's 9-digit radio identity",
        "flag": "flag state (ISO code); reported, never scored",
        "vessel_type": f"type of boat: {one_of(VESSEL_TYPES)}",
        "length_m": "length in metres",
        "last_port": "coming from (port)",
        "next_port": "going to (port)",
        "plate": "licence plate",
        "plate_country": "country of the plate (ISO code); reported, never scored",
        "vehicle_type": f"type of vehicle: {one_of(VEHICLE_TYPES)}",
        "phone": "phone number",
        "email": "e-mail address",
        "notes": f"the visitor's own note, free text of at most {MAX_LENGTHS['notes']} characters",
        "id": "internal number",
        "reference": "reference shown to the visitor (like K7QX-M2PD)",
        "site_id": "the site",
        "point_id": "the check-in point used",
        "source": f"how it was entered: {one_of(SOURCES)}",
        "subject_key": (
            "the identity the rules follow across visits: registration, MMSI, plate, or name "
            "and place of residence"
        ),
        "search_key": "names and identifiers folded for the register search",
        "private_token_hash": (
            "SHA-256 of the visitor's private link; the link itself is not kept"
        ),
        "idempotency_key": "the form's key that makes a double submit one visit",
        "request_fingerprint": (
            "SHA-256 of the submitted form, to tell a double submit from a reused form"
        ),
        "created_at": "when the entry was made",
        "updated_at": "when it last changed",
    }


def _visit_columns() -> dict[str, bool]:
    """Visit's columns in table order, each with whether it may be empty."""
    from nightreg.models import Visit

    return {c.name: bool(c.nullable) for c in Visit.__table__.columns}


def _check_grouped(columns: Iterable[str], texts: dict[str, str]) -> None:
    grouped = [c for _title, names in VISIT_GROUPS for c in names]
    missing = sorted(set(columns) - set(grouped))
    stale = sorted(set(grouped) - set(columns))
    undescribed = sorted(set(grouped) - set(texts))
    if missing or stale or undescribed:
        raise DocError(
            "docs/privacy_doc.py VISIT_GROUPS and _visit_texts() must describe every Visit "
            f"column: not grouped {missing}, no such column {stale}, no text {undescribed}"
        )


def visit_fields() -> str:
    columns = _visit_columns()
    texts = _visit_texts()
    _check_grouped(columns, texts)
    words = {w for c in columns for w in c.split("_")} & NEVER_COLUMN_WORDS
    if words:
        raise DocError(
            f"Visit has a column with {sorted(words)} in its name: docs/privacy.md says no "
            "such data is collected; rewrite that sentence and NEVER_COLUMN_WORDS"
        )
    lines = ["| group | field | what it holds | stored |", "|---|---|---|---|"]
    for title, names in VISIT_GROUPS:
        for name in names:
            stored = "when given" if columns[name] else "always"
            lines.append(f"| {title} | `{name}` | {texts[name]} | {stored} |")
    lines += [
        "",
        "No column holds a document number, a citizen service number (BSN), a date of birth, an "
        "age, a gender, an ethnicity or a nationality; the form has no field for them, and the "
        "form's checks ignore any field they were not written for.",
    ]
    return "\n".join(lines)


# --- who may see what ------------------------------------------------------------------------

PERMISSION_TEXTS: dict[str, str] = {
    "agreements.manage": "make and end sharing agreements",
    "agreements.view": "read the sharing agreements",
    "audit.view": "read, filter, export and verify the audit trail (an admin: the events of "
    "their own sites and of accounts and settings, without personal details, never the "
    "watchlist's; the auditor: all, with details; see 1.11)",
    "flags.export": "export flagged entries with their visits (CSV, JSON)",
    "flags.review": "dismiss a flag, keep watching it, forward it under an agreement",
    "flags.view": "see flags with their evidence visits (watchlist hits: analysts only)",
    "insight.all": "the information pictures over every site",
    "insight.view": "information pictures: aggregates, no personal data",
    "jobs.manage": "the scheduled jobs: their runs, and running one now",
    "observations.add": "record what one saw on a visit or at a place on the site",
    "points.manage": "check-in points: add, rename, disable, new QR code, poster",
    "register.edit": "walk-ins, corrections, notes, check-out by staff",
    "register.export": "police print, export and import of the register",
    "register.view": "tonight, search the register, open a visit",
    "retention.manage": "change a site's retention periods; place and lift legal holds",
    "rounds.walk": "the night round at a marina: mark boats seen or not there, add a boat "
    "found (a walk-in of source `round`)",
    "retention.view": "retention policies, the next purge's preview, its receipts, legal holds",
    "signals.ack": "acknowledge pulled signals (the hub's API)",
    "signals.view": "the signals forwarded to the hub, as sent; the hub's pull API",
    "sites.manage": "create and change sites",
    "subjects.manage": "subject requests: find, report and erase early a person's data",
    "tourist_tax.view": "the tourist-tax return: counts only",
    "users.manage": "staff accounts and API tokens",
    "sightings.post": "post gate camera sightings (API tokens only; it reads nothing)",
}


def permissions() -> str:
    from nightreg.services.access import GLOBAL_PERMISSIONS, PERMISSIONS
    from nightreg.vocabulary import TOKEN_ROLES as ROLES

    missing = sorted(set(PERMISSIONS) - set(PERMISSION_TEXTS))
    stale = sorted(set(PERMISSION_TEXTS) - set(PERMISSIONS))
    if missing or stale:
        raise DocError(
            "docs/privacy_doc.py PERMISSION_TEXTS must describe every permission: "
            f"missing {missing}, no such permission {stale}"
        )
    lines = ["| permission | allows | roles | on |", "|---|---|---|---|"]
    for name in sorted(PERMISSIONS):
        roles = ", ".join(f"`{r}`" for r in ROLES if r in PERMISSIONS[name])
        where = "all sites" if name in GLOBAL_PERMISSIONS else "the account's own sites"
        lines.append(f"| `{name}` | {PERMISSION_TEXTS[name]} | {roles} | {where} |")
    lines += ["", "| role | holds |", "|---|---|"]
    for role in ROLES:
        held = ", ".join(f"`{p}`" for p in sorted(PERMISSIONS) if role in PERMISSIONS[p])
        lines.append(f"| `{role}` | {held} |")
    return "\n".join(lines)


def hub_fields() -> str:
    from nightreg.services.agreements import ALWAYS_SENT, FIELDS, VISIT_FIELDS

    lines = ["| field | what | sent |", "|---|---|---|"]
    for code, label in FIELDS.items():
        per = "for each evidence visit at the forwarding site" if code in VISIT_FIELDS else ""
        when = "always" if code in ALWAYS_SENT else "only when the agreement names it"
        lines.append(f"| `{code}` | {label} | {'; '.join(w for w in (when, per) if w)} |")
    columns = _visit_columns()
    personal = [c for title, names in VISIT_GROUPS if title != SYSTEM_GROUP for c in names]
    never = [c for c in personal if c not in FIELDS and c in columns]
    system = [c for c in dict(VISIT_GROUPS)[SYSTEM_GROUP] if c not in FIELDS]
    lines += [
        "",
        "Never sent under any agreement, of a visit: "
        + ", ".join(f"`{c}`" for c in never)
        + "; nor the columns kept by the system ("
        + ", ".join(f"`{c}`" for c in system)
        + "), staff notes, observations' text or the audit trail.",
    ]
    return "\n".join(lines)


# --- gate cameras ----------------------------------------------------------------------------

# Every column of nightreg.models.Sighting, and the site's switch (issue 19).
SIGHTING_TEXTS: dict[str, str] = {
    "id": "the sighting's number",
    "site_id": "the site whose gate camera read it",
    "camera": "the camera's own id, as the camera system sends it",
    "seen_at": "when the camera read the plate (UTC)",
    "direction": "`in` or `out`",
    "plate": "the plate as the camera read it",
    "subject_key": "the plate as a key (`plate:AB123C`), which matches it to a vehicle's visits",
    "received_at": "when the register received it",
}
SITE_CAMERA_TEXTS: dict[str, str] = {
    "cameras_enabled": "whether the site takes sightings at all (off until an admin switches "
    "it on; every change audited as `site_changed`)",
    "cameras_dpia_reference": "the reference of the DPIA that covers the site's gate cameras, "
    "required to switch them on, shown on the site's page",
}


def gate_cameras() -> str:
    """The gate cameras' sightings: what is kept, the switch, how long (from the code)."""
    from nightreg.models import Sighting, Site
    from nightreg.services import sightings

    columns = [c.name for c in Sighting.__table__.columns]
    site_columns = [c.name for c in Site.__table__.columns if c.name.startswith("cameras_")]
    missing = sorted(
        (set(columns) - set(SIGHTING_TEXTS)) | (set(site_columns) - set(SITE_CAMERA_TEXTS))
    )
    stale = sorted(
        (set(SIGHTING_TEXTS) - set(columns)) | (set(SITE_CAMERA_TEXTS) - set(site_columns))
    )
    if missing or stale:
        raise DocError(
            "docs/privacy_doc.py SIGHTING_TEXTS / SITE_CAMERA_TEXTS must describe every column: "
            f"missing {missing}, no such column {stale}"
        )
    slack = int(sightings.MATCH_SLACK.total_seconds() // 60)
    lines = ["| where | column | what |", "|---|---|---|"]
    lines += [f"| site | `{n}` | {SITE_CAMERA_TEXTS[n]} |" for n in site_columns]
    lines += [f"| sighting | `{n}` | {SIGHTING_TEXTS[n]} |" for n in columns]
    lines += [
        "",
        f"A visit *covers* a sighting of its plate at its site from {slack} minutes before its "
        f"arrival until {slack} minutes after its departure (while it is present: until now). "
        "A sighting no visit covers is deleted "
        f"{sightings.UNMATCHED_DAYS} days after it was seen (a time further back is refused "
        "when posted); one a visit covers lives as long as that visit, and goes in the purge "
        "after it. Legal holds on the site or on the plate keep sightings; a subject request "
        "reports and erases the sightings of the plates it finds. At most "
        f"{sightings.MAX_BATCH} sightings per request; a time more than "
        f"{int(sightings.FUTURE_SKEW.total_seconds() // 60)} minutes ahead is refused.",
    ]
    return "\n".join(lines)


# --- retention -------------------------------------------------------------------------------

# Each retention setting: what it keeps, and why this default.
RETENTION_TEXTS: dict[str, tuple[str, str]] = {
    "retention_visit_days": (
        "visits, with their staff notes: days after departure (or after the expected "
        "departure, for a visit never checked out); longer while a flag rests on the visit",
        "a year covers a season and the next, so a returning guest and the police's questions "
        "about last summer can be answered; Art. 438 Sr sets no period (check whether the "
        "municipality's tourist-tax by-law asks for one)",
    ),
    "retention_open_flag_days": (
        "open and watched flags: days after they were raised",
        "a pattern nobody decided on within a year is not going to be decided on",
    ),
    "retention_dismissed_flag_days": (
        "dismissed (and expired) flags: days after the review",
        "long enough to see a decision in the queue and to correct it, short because a "
        "dismissed suspicion should not linger",
    ),
    "retention_forwarded_flag_days": (
        "forwarded flags and their signals: days after forwarding, when the agreement they "
        "went under does not say (an agreement's own `keep_days` counts otherwise; the longest "
        "if several)",
        "the sender must be able to answer the hub's questions about what it sent; the "
        "agreement sets the period",
    ),
    "retention_audit_days": (
        "audit events: days after the event (installation-wide)",
        "two years lets a privacy officer answer who saw or changed what, and spans a "
        "complaint's handling; the chain stays verifiable from its anchor",
    ),
    "retention_audit_search_days": (
        "the detail records of searches and sign-in attempts in the audit trail (search terms, "
        "filters, a subject query, the e-mail typed): days after the event; the event itself "
        "stays for its own period",
        "a month answers a question about a recent search; a search term names a person and "
        "should not outlive the need to check who searched",
    ),
    "retention_job_run_days": (
        "job runs (start, end, counts, errors; no personal data): days (installation-wide)",
        "enough to spot a job that keeps failing",
    ),
    "retention_aggregate_years": (
        "non-personal counts per site, day and kind (visits, persons, overnight stays): years",
        "a business keeps its records for tax for seven years (article 52 of the AWR); the "
        "counts let a tourist-tax return be checked as long",
    ),
    "purge_cron": (
        "when the purge runs (crontab, installation time zone)",
        "at night, when hardly anyone checks in",
    ),
}


def _setting_defaults() -> dict[str, object]:
    from nightreg.settings import Settings

    return {f.name: f.default for f in dataclasses.fields(Settings)}


def retention_settings() -> list[tuple[str, str, object]]:
    """(field, environment variable, default) of every retention setting, in Settings order."""
    from nightreg.settings import PREFIX

    names = [n for n in _setting_defaults() if n.startswith("retention_") or n == "purge_cron"]
    missing = sorted(set(names) - set(RETENTION_TEXTS))
    stale = sorted(set(RETENTION_TEXTS) - set(names))
    if missing or stale:
        raise DocError(
            "docs/privacy_doc.py RETENTION_TEXTS must explain every retention setting: "
            f"missing {missing}, no such setting {stale}"
        )
    defaults = _setting_defaults()
    return [(n, PREFIX + n.upper(), defaults[n]) for n in names]


def _amount(name: str, value: object) -> str:
    if name.endswith("_days"):
        return f"{value} days"
    if name.endswith("_years"):
        return f"{value} years"
    match = re.fullmatch(r"(\d+) (\d+) \* \* \*", str(value))
    if match:
        return f"`{value}` (every day at {int(match[2]):02d}:{int(match[1]):02d})"
    return f"`{value}`"


def retention() -> str:
    from nightreg.services.agreements import DEFAULT_KEEP_DAYS
    from nightreg.services.retention import SITE_FIELDS

    per_site = {f"retention_{f}" for f in SITE_FIELDS}
    lines = [
        "| what | default | setting | a site may differ | why this default |",
        "|---|---|---|---|---|",
    ]
    for name, env, default in retention_settings():
        what, why = RETENTION_TEXTS[name]
        if name in per_site:
            own = "yes (its retention policy)"
        elif name == "retention_forwarded_flag_days":
            own = f"per agreement (`keep_days`, {DEFAULT_KEEP_DAYS} unless set)"
        else:
            own = "no"
        lines.append(f"| {what} | {_amount(name, default)} | `{env}` | {own} | {why} |")
    return "\n".join(lines)


# --- backups --------------------------------------------------------------------------------


def backups() -> str:
    """How long purged data lives on in the nightly backups (from the backup settings)."""
    defaults = _setting_defaults()
    keep, cron, purge = defaults["backup_keep"], defaults["backup_cron"], defaults["purge_cron"]
    return (
        "**Backups.** With `NIGHTREG_BACKUP_DIR` set, the nightly backup (`NIGHTREG_BACKUP_CRON`, "
        f"default {_amount('backup_cron', cron)}, after the purge at {_amount('purge_cron', purge)}"
        ") writes an encrypted copy of the whole database into that folder and keeps the newest "
        f"`NIGHTREG_BACKUP_KEEP` (default {keep}), deleting older ones. Data the purge deletes "
        f"is therefore gone from the last backup {keep} nights later (with the defaults: within "
        "a week), and never sits in a backup made after the purge that deleted it. Every backup "
        "is encrypted with `NIGHTREG_BACKUP_KEY` (AES-256-GCM, authenticated); no plain copy is "
        "written to the backup folder, and each backup and restore is recorded in the audit "
        "trail. Copies the operator makes elsewhere (`nightreg backup --out`, copies of the "
        "folder to another machine) are the operator's to delete on the same schedule: keep "
        "them no longer than **[the backup period, for instance 7 days]**. A restore brings "
        "back what was purged after the backup was made: run the purge right after a restore "
        "(`nightreg jobs run purge`)."
    )


# --- AIS --------------------------------------------------------------------------------------

# Every column of nightreg.models.AisMovement and every AIS column of the site, described.
AIS_MOVEMENT_TEXTS = {
    "id": "internal number",
    "site_id": "the site whose harbour area it is",
    "mmsi": "the boat's 9-digit radio identity, as its transponder sends it",
    "direction": "`in` (entered the harbour area) or `out` (left it)",
    "at": "when: the time the receiver wrote in its tag block, else the time of reception",
    "visit_id": "the register's visit of that MMSI at the site, when one fits (within "
    "{grace} hours of its stay)",
    "recorded_at": "when the movement was written or matched",
}
AIS_SITE_TEXTS = {
    "ais_enabled": "the switch: AIS is off until an admin switches it on",
    "ais_dpia_reference": "the reference of the DPIA that covers AIS at this site; switching "
    "on requires it",
    "ais_area_lat": "the harbour area's centre, latitude (when the area is a circle)",
    "ais_area_lon": "the harbour area's centre, longitude (when the area is a circle)",
    "ais_area_radius_m": "the harbour area's radius in metres (when the area is a circle)",
    "ais_area_polygon": "the harbour area as a polygon instead of a circle: its corners' "
    "latitudes and longitudes (JSON), drawn by the admin around the basins and the entrance; "
    "a place, never a boat's position",
}


def ais() -> str:
    """What AIS keeps (from the models), the switch and its DPIA reference, and how long."""
    from nightreg.models import AisMovement, Site
    from nightreg.services.ais.store import MATCH_GRACE, UNMATCHED_DAYS

    columns = [c.name for c in AisMovement.__table__.columns]
    site_columns = [c.name for c in Site.__table__.columns if c.name.startswith("ais_")]
    for name in (*columns, *site_columns):
        if name not in AIS_MOVEMENT_TEXTS and name not in AIS_SITE_TEXTS:
            raise DocError(f"docs/privacy_doc.py: describe the AIS column `{name}`")
    grace = int(MATCH_GRACE.total_seconds() // 3600)
    lines = [
        "**AIS movements** (marinas that switch AIS on). The harbour's AIS receiver sends the "
        "position reports of the boats around; the listener keeps, per MMSI, only when it "
        "**entered** and when it **left** the harbour area, and nothing else: no position, no "
        "course or speed, no name or static data, no log of the sentences. Positions are held "
        "in memory just long enough to tell a crossing from a boat moored at the edge.",
        "",
        "| table | field | what it holds |",
        "|---|---|---|",
    ]
    lines += [
        f"| `ais_movement` | `{name}` | {AIS_MOVEMENT_TEXTS[name].format(grace=grace)} |"
        for name in columns
    ]
    lines += [f"| `site` | `{name}` | {AIS_SITE_TEXTS[name]} |" for name in site_columns]
    lines += [
        "",
        "- **Off until switched on, per site**, by an admin on the site's page (or `nightreg "
        "site area SLUG --enable --dpia REF`); switching on requires the DPIA reference, which "
        "is kept with the setting, shown on the site's page and audited (`site_changed`, with "
        "before and after). The processing record of a site with AIS on names that DPIA: "
        "**[site: DPIA reference, as on the site's page]**.",
        f"- **Retention.** A movement matched to a visit lives and goes with that visit (its "
        f"period, its holds, its early erasure); one that matched no visit goes after "
        f"{UNMATCHED_DAYS} days (the purge's category `ais_movements`, counted on its receipt), "
        "unless a hold on the site or on the subject `mmsi:…` keeps it.",
        "- **Use.** A visit's page lists its movements; `night_movement` counts a trip out and "
        "back at night that the register does not show, and its reason names AIS as the "
        "source. A boat inside the area with no open visit is listed on Tonight for the "
        "harbour master (**on AIS, not in the register**); that list is never a flag and is "
        "never sent to the hub. No rule reads the MMSI's country digits (its MID).",
        "- **Subject requests** report a visit's movements and those of its MMSI that matched "
        "no visit; an early erasure deletes both.",
    ]
    return "\n".join(lines)


# --- the audit's detail records ---------------------------------------------------------------


def audit_details() -> str:
    """Which values of which audit events go to a detail record, and when it is erased."""
    from nightreg.services import audit

    def when(action: str) -> str:
        if action in audit.SEARCH_ACTIONS:
            return "after `NIGHTREG_RETENTION_AUDIT_SEARCH_DAYS`"
        return "with its visit, flag or observation (purge, early erasure), else with its event"

    lines = ["| audit event | personal values in its detail record | erased |", "|---|---|---|"]
    for action in sorted(audit.PERSONAL):
        keys = ", ".join(f"`{k}`" for k in sorted(audit.PERSONAL[action]))
        lines.append(f"| `{action}` | {keys} | {when(action)} |")
    return "\n".join(lines)


# --- the rules -------------------------------------------------------------------------------

SCOPE_TEXTS = {
    "subject": "the visits of one boat, car or person, across all sites",
    "vessels": "the visits of boats that share a registration, MMSI or name",
    "site": "the visits of one site in a period",
    "visit": "one visit at a time",
    "counts": "a site's number of arrivals per day (no visit data)",
    "external": "nothing: raised at check-in or by staff, not by the scan",
}


def _external_scores() -> dict[str, str]:
    from nightreg.services import observations, watchlist

    return {
        "watchlist_hit": f"{watchlist.HIT_SCORE}, always",
        "observation": (
            f"{observations.BASE_SCORE} for one indicator, "
            f"{observations.SCORE_PER_EXTRA_INDICATOR} more for each further one, "
            f"at most {observations.MAX_SCORE}"
        ),
    }


def _score_text(code: str, module: ModuleType) -> str:
    """How a rule scores, read from its `score(base, found, needed, step=…)` calls."""
    external = _external_scores()
    if code in external:
        return external[code]
    from nightreg.rules.base import score

    default_step = inspect.signature(score).parameters["step"].default
    tree = ast.parse(inspect.getsource(module))
    calls = sorted(
        (
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "score"
        ),
        key=lambda node: (node.lineno, node.col_offset),
    )
    texts: list[str] = []
    grows = False
    for call in calls:
        base = ast.literal_eval(call.args[0])
        step = default_step
        for keyword in call.keywords:
            if keyword.arg == "step":
                step = ast.literal_eval(keyword.value)
        grows = grows or step != 0
        if step == 0:
            text = f"{base}, however far past the threshold"
        else:
            text = f"{base} when the threshold is just met, {step} more for each step past it"
        if text not in texts:
            texts.append(text)
    if not texts:
        raise DocError(f"rule {code}: no score() call found; say how it scores in _score_text")
    return "; or ".join(texts) + (" (at most 100)" if grows else "")


def _sentence(text: str) -> str:
    return re.sub(r"%\((\w+)\)s", r"[\1]", text)


def rules() -> str:
    from nightreg.rules import RULES

    out: list[str] = []
    for code, rule in RULES.items():
        module = importlib.import_module(f"nightreg.rules.{code}")
        if getattr(module, "RULE", None) is not rule:
            raise DocError(f"rule {code}: expected its module nightreg/rules/{code}.py")
        if rule.scope not in SCOPE_TEXTS:
            raise DocError(f"rule {code}: describe its scope {rule.scope!r} in SCOPE_TEXTS")
        summary = (module.__doc__ or "").split("\n\n")[0].strip()
        summary = summary.removeprefix(f"{code}:").strip()
        summary = " ".join(summary.split())
        out += [f"#### `{code}`: {rule.title}", ""]
        out.append(f"- **What it flags**: {summary[:1].upper()}{summary[1:]}")
        out.append(f"- **Why**: {rule.rationale}")
        out.append(f"- **It looks at**: {SCOPE_TEXTS[rule.scope]}.")
        sentences = list(dict.fromkeys(rule.variants.values())) or [rule.reason]
        out.append("- **The flag says**: " + " / ".join(f"“{_sentence(s)}”" for s in sentences))
        if rule.thresholds:
            out.append("- **Thresholds** (defaults; a site may set its own):")
            out += [f"  - `{t.name}` = {t.default}: {t.label}" for t in rule.thresholds]
        else:
            out.append("- **Thresholds**: none.")
        out.append(f"- **Score**: {_score_text(code, module)}.")
        if not rule.forwardable:
            forwarding = "never; it is for the site only."
        else:
            forwarding = (
                "only under an agreement that covers the rule: after a staff review, or at "
                "once if the agreement names the rule as automatic."
            )
        if rule.restricted:
            forwarding += " Its flags are shown only to analysts."
        out += [f"- **Forwarded to the hub**: {forwarding}", ""]
    return "\n".join(out).rstrip()


def _forbidden_names() -> list[str]:
    """The names tests/unit/test_rules_fairness.py forbids in every rule module."""
    tree = ast.parse(FAIRNESS_TEST.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "FORBIDDEN" for t in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            return sorted(ast.literal_eval(node.value.args[0]))
    raise DocError(f"{FAIRNESS_TEST}: no FORBIDDEN = frozenset({{...}}) found")


def rule_facts() -> str:
    from nightreg.rules.base import NightCount, VisitFacts

    facts = ", ".join(f"`{f.name}`" for f in dataclasses.fields(VisitFacts))
    counts = ", ".join(f"`{f.name}`" for f in dataclasses.fields(NightCount))
    forbidden = ", ".join(f"`{n}`" for n in _forbidden_names())
    return "\n".join(
        [
            f"- A rule is given these facts of a visit, and nothing else: {facts}.",
            f"- `arrival_surge` is given counts only: {counts}.",
            f"- Names no rule module may use (the fairness test): {forbidden}.",
        ]
    )


# --- the file --------------------------------------------------------------------------------

BLOCKS: dict[str, Callable[[], str]] = {
    "visit-fields": visit_fields,
    "permissions": permissions,
    "hub-fields": hub_fields,
    "retention": retention,
    "gate-cameras": gate_cameras,
    "backups": backups,
    "ais": ais,
    "audit-details": audit_details,
    "rules": rules,
    "rule-facts": rule_facts,
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.DOTALL
    )


def render(text: str) -> str:
    """`text` with every generated block rewritten from the code."""
    for name, make in BLOCKS.items():
        pattern = _block(name)
        if len(pattern.findall(text)) != 1:
            raise DocError(f"docs/privacy.md: expected one <!-- generated:{name} --> block")
        match = pattern.search(text)
        assert match is not None
        text = text[: match.end(1)] + make() + "\n" + text[match.start(2) :]
    return text


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    try:
        fresh = render(text)
    except DocError as exc:
        print(exc, file=sys.stderr)
        return 2
    if "--check" in argv:
        same = fresh == text
        print("docs/privacy.md is current" if same else f"docs/privacy.md is stale: {COMMAND}")
        return 0 if same else 1
    if fresh != text:
        DOC.write_text(fresh, encoding="utf-8")
    print(f"wrote the generated parts of {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
