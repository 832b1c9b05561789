"""Retention: how long each kind of data lives, what holds it longer, and the purge.

The periods (README "Retention"; docs/privacy.md):

- a visit lives `visit_days` after its departure, or after its expected departure if it was
  never checked out, and as long as any flag rests on it (the evidence lives with the flag);
- an open or watched flag lives at most `open_flag_days` after it was raised;
- a dismissed (or expired) flag lives `dismissed_flag_days` after the review;
- a forwarded flag and its signals live as long as the agreement it went under says
  (`keep_days`, the longest if it went under several), counted from the forwarding;
- observations live as long as visits do (from when they were made), and while their visit
  or a flag needs them;
- audit events, job runs and the aggregates are kept for the whole installation;
- failed sign-ins (an address and the e-mail tried) go after a week, ended staff sessions at
  once (they can no longer be used).

Visits and flags take the site's own policy where it has one (`RetentionPolicy`), the
settings' defaults otherwise. A legal hold in force keeps everything it covers: named visits,
a subject's visits and flags (at one site or all), or everything of a site.

The purge deletes rows (never blanks them) in small transactions so that check-ins go on
between them; each batch deletes and counts its visits into the non-personal aggregates in
one transaction (DELETE … RETURNING), so an interrupted purge, run again, ends in the same
state. The receipt (`purge_completed` in the audit trail) holds counts by category and the
oldest date kept, nothing personal. SQLite runs with `secure_delete` (nightreg.db), so freed
pages are overwritten; the purge then checkpoints the WAL so that no copy of a deleted page
stays in it. PostgreSQL's deleted rows are removed from the tables and their indexes
(including the trigram search index) by VACUUM, which the purge runs on the tables it changed.
"""

from __future__ import annotations

from nightreg.services.holds import MANAGE, VIEW
from nightreg.services.retention.policies import (
    CATEGORIES,
    CATEGORY_LABELS,
    MAX_DAYS,
    SIGN_IN_FAILURE_DAYS,
    SITE_FIELDS,
    Defaults,
    Policy,
    PolicyInvalid,
    parse_days,
    policies,
    set_policy,
)
from nightreg.services.retention.preview import CategoryPreview, Preview, preview
from nightreg.services.retention.purging import (
    BATCH,
    SQLITE_BATCH,
    PurgeResult,
    oldest_kept,
    purge,
)
from nightreg.services.retention.receipts import receipt, receipts

__all__ = [
    "BATCH", "CATEGORIES", "CATEGORY_LABELS", "MANAGE", "MAX_DAYS", "SIGN_IN_FAILURE_DAYS",
    "SITE_FIELDS", "SQLITE_BATCH", "VIEW", "CategoryPreview", "Defaults", "Policy",
    "PolicyInvalid", "Preview", "PurgeResult", "oldest_kept", "parse_days", "policies",
    "preview", "purge", "receipt", "receipts", "set_policy",
]  # fmt: skip
