"""The register's code lists and their labels: one home for both sides and the services.

A code (``vessel``, ``business_park``, ``forwarded``) is what the database, the CSV/JSON
exports and the API carry; its label is an English msgid, translated where it is shown (the
templates' ``gettext``, or ``translate_pair`` for a <select>). The lists' order is the order
in which forms offer them.
"""

from __future__ import annotations

from nightreg.i18n import N_

# --- what a visitor registers ---------------------------------------------------------------

KINDS = ("vessel", "vehicle", "stay")
VESSEL_TYPES = ("sail", "motor", "rib", "speedboat", "fishing", "commercial", "other")
VEHICLE_TYPES = ("car", "van", "truck", "trailer", "camper", "motorcycle", "other")
ID_DOCUMENT_TYPES = ("passport", "id_card", "driving_licence", "other")

KIND_LABELS = {
    "vessel": N_("Boat"),
    "vehicle": N_("Vehicle"),
    "stay": N_("Overnight stay"),
}
VESSEL_TYPE_LABELS = {
    "sail": N_("Sailing yacht"),
    "motor": N_("Motor yacht"),
    "rib": N_("RIB"),
    "speedboat": N_("Speedboat"),
    "fishing": N_("Fishing vessel"),
    "commercial": N_("Commercial vessel"),
    "other": N_("Other"),
}
VEHICLE_TYPE_LABELS = {
    "car": N_("Car"),
    "van": N_("Van"),
    "truck": N_("Truck"),
    "trailer": N_("Trailer"),
    "camper": N_("Camper"),
    "motorcycle": N_("Motorcycle"),
    "other": N_("Other"),
}
ID_DOCUMENT_LABELS = {
    "passport": N_("Passport"),
    "id_card": N_("Identity card"),
    "driving_licence": N_("Driving licence"),
    "other": N_("Other"),
}

# --- sites, visits and who entered them -----------------------------------------------------

SITE_KINDS = ("marina", "business_park")
SITE_KIND_LABELS = {"marina": N_("Marina"), "business_park": N_("Business park")}

# What a visitor may register at each kind of site: a marina also has a car park.
KINDS_BY_SITE_KIND: dict[str, tuple[str, ...]] = {
    "marina": ("vessel", "vehicle"),
    "business_park": ("vehicle", "stay"),
}

SOURCES = ("kiosk", "staff", "api", "round")
SOURCE_LABELS = {
    "kiosk": N_("Check-in by the visitor"),
    "staff": N_("Entered by staff"),
    "api": N_("Through the API"),
    "round": N_("Found on the night round"),
}
# The register's column is narrow: one word each.
SOURCE_SHORT_LABELS = {
    "kiosk": N_("Visitor"),
    "staff": N_("Staff"),
    "api": N_("API"),
    "round": N_("Round"),
}

VISIT_STATUS_LABELS = {
    "present": N_("Present"),
    "overdue": N_("Overdue"),
    "departed": N_("Departed"),
}

# --- the night round ------------------------------------------------------------------------

# What the harbour master marks for a boat on the evening round: there, or not at its berth.
ROUND_MARKS = ("seen", "missing")
ROUND_MARK_LABELS = {"seen": N_("Seen"), "missing": N_("Not there")}

# --- staff, flags and holds -----------------------------------------------------------------

ROLES = ("admin", "harbour_master", "security", "analyst", "auditor")
# An API token may also be a gate camera system's (issue 19): it posts sightings, nothing else.
TOKEN_ROLES = (*ROLES, "sensor")
ROLE_LABELS = {
    "admin": N_("Administrator"),
    "harbour_master": N_("Harbour master"),
    "security": N_("Security"),
    "analyst": N_("Analyst"),
    "auditor": N_("Auditor"),
    "sensor": N_("Sensor (gate camera)"),
}

FLAG_STATUSES = ("open", "watching", "dismissed", "forwarded", "expired")
FLAG_STATUS_LABELS = {
    "open": N_("Open"),
    "watching": N_("Watching"),
    "dismissed": N_("Dismissed"),
    "forwarded": N_("Forwarded"),
    "expired": N_("Expired"),
}

HOLD_SCOPES = ("visits", "subject", "site")

# --- the scheduled jobs (the Jobs page, the admin's home) -----------------------------------

JOB_LABELS = {
    "scan": N_("Scan for signals"),
    "overdue": N_("Overdue check"),
    "dispatch": N_("Send signals to the hub"),
    "purge": N_("Retention purge"),
    "backup": N_("Nightly backup"),
}
JOB_RUN_STATUS_LABELS = {
    "running": N_("Running"),
    "ok": N_("Done"),
    "failed": N_("Failed"),
}
# Counters that only say something happened (1): shown without their number.
JOB_COUNT_FLAGS = frozenset({"push_off", "time_budget", "hub_unreachable", "unfinished"})
# What a run counted (JobRun.counts), by job; a key not listed is shown as it is.
_SCAN_COUNTS = {
    "candidates": N_("candidates"),
    "visits": N_("visits read"),
    "findings": N_("findings"),
    "created": N_("new flags"),
    "grown": N_("flags grown"),
    "reopened": N_("flags reopened"),
    "forwarded": N_("forwarded"),
    "watchlist_hits": N_("watchlist hits"),
}
JOB_COUNT_LABELS = {
    "scan": _SCAN_COUNTS,
    "overdue": _SCAN_COUNTS,
    "dispatch": {
        "sent": N_("sent"),
        "delivered": N_("delivered"),
        "retried": N_("to try again"),
        "failed": N_("failed"),
        "pending_left": N_("still pending"),
        "skipped": N_("skipped"),
        "withheld": N_("withheld"),
        "push_off": N_("sending off"),
        "time_budget": N_("stopped: time budget"),
        "hub_unreachable": N_("stopped: hub unreachable"),
    },
    "purge": {
        "flags_open": N_("open flags deleted"),
        "flags_dismissed": N_("dismissed flags deleted"),
        "flags_forwarded": N_("forwarded flags deleted"),
        "visits": N_("visits deleted"),
        "observations": N_("observations deleted"),
        "audit_events": N_("audit events deleted"),
        "job_runs": N_("job runs deleted"),
        "aggregates": N_("statistics deleted"),
        "sign_in_failures": N_("failed sign-ins deleted"),
        "sessions": N_("sessions deleted"),
        "aggregated_visits": N_("visits counted into statistics"),
        "unfinished": N_("unfinished"),
    },
    "backup": {
        "size_kb": N_("kB written"),
        "kept": N_("backups kept"),
        "deleted": N_("old backups deleted"),
    },
}
