"""Settings read once from NIGHTREG_* environment variables into one frozen dataclass."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nightreg.hubsign import INSTALLATION_ID_RE, KEY_ID_RE, default_key_id

PREFIX = "NIGHTREG_"


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line an operator can act on."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    """Read NAME, or the file named by NAME_FILE (Docker secrets)."""
    key = PREFIX + name
    if key + "_FILE" in env:
        path = Path(env[key + "_FILE"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{key}_FILE: cannot read {path}: {exc.strerror}") from exc
    return env.get(key)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = _get(env, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{PREFIX}{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{PREFIX}{name}: must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{PREFIX}{name}: expected true or false, got {raw!r}")


def _ais_listen(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """SLUG=udp://HOST:PORT or SLUG=tcp://HOST:PORT, comma-separated."""
    raw = (_get(env, "AIS_LISTEN") or "").strip()
    out: list[tuple[str, str]] = []
    for item in filter(None, (p.strip() for p in raw.split(","))):
        slug, _eq, source = item.partition("=")
        scheme, sep, rest = source.partition("://")
        host, colon, port = rest.rpartition(":")
        if not (
            slug
            and sep
            and scheme in ("udp", "tcp")
            and colon
            and host
            and port.isdigit()
            and 0 < int(port) < 65536
        ):
            raise SettingsError(
                f"{PREFIX}AIS_LISTEN: expected SLUG=udp://HOST:PORT or SLUG=tcp://HOST:PORT "
                f"(comma-separated), got {item!r}"
            )
        out.append((slug.strip(), source.strip()))
    return tuple(out)


def _cron(env: Mapping[str, str], name: str, default: str) -> str:
    """A crontab string (minute hour day month weekday), checked by APScheduler's own parser."""
    from apscheduler.triggers.cron import CronTrigger

    raw = (_get(env, name) or default).strip()
    try:
        CronTrigger.from_crontab(raw)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name}: not a crontab string ({exc}): {raw!r}") from None
    return raw


def _rate_limit_store(
    env: Mapping[str, str], database_url: str
) -> Literal["auto", "memory", "database"]:
    """Where rate limits count: the shared table needs PostgreSQL."""
    raw = (_get(env, "RATE_LIMIT_STORE") or "auto").strip().lower()
    if raw == "auto":
        return "auto"
    if raw == "memory":
        return "memory"
    if raw != "database":
        raise SettingsError(f"{PREFIX}RATE_LIMIT_STORE: auto, memory or database, got {raw!r}")
    if database_url.startswith("sqlite"):
        raise SettingsError(
            f"{PREFIX}RATE_LIMIT_STORE: database needs PostgreSQL; on SQLite the limits are "
            "counted in memory (one process): use auto or memory"
        )
    return "database"


def _roles(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of staff roles; `none` for the empty list."""
    from nightreg.vocabulary import ROLES

    raw = (_get(env, name) or "").strip()
    if not raw:
        return default
    if raw.lower() == "none":
        return ()
    roles = tuple(dict.fromkeys(r.strip() for r in raw.split(",") if r.strip()))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise SettingsError(
            f"{PREFIX}{name}: unknown role {unknown[0]!r}; use some of {', '.join(ROLES)} or none"
        )
    return roles


LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
MAX_DISPATCH_CONCURRENCY = 256


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1, localhost (and names under .localhost): traffic that stays on the box."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hub_url_problem(url: str) -> str | None:
    """What is wrong with a hub URL (one line), or None.

    Signals carry the agreed personal data: they travel over https only, except to a hub on
    this machine (a test receiver, a local relay).
    """
    parts = urlsplit(url)
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if parts.scheme not in {"http", "https"} or not parts.netloc or not host:
        return f"expected https://host/path, got {url!r}"
    if parts.scheme == "http" and not is_loopback_host(host):
        return (
            f"{url!r} would send the agreed personal data unencrypted; use https:// "
            "(http:// is accepted only for a loopback address: 127.0.0.1, ::1, localhost)"
        )
    return None


def _dispatch_concurrency(env: Mapping[str, str]) -> int:
    value = _int(env, "DISPATCH_CONCURRENCY", 16, minimum=1)
    if value > MAX_DISPATCH_CONCURRENCY:
        raise SettingsError(
            f"{PREFIX}DISPATCH_CONCURRENCY: at most {MAX_DISPATCH_CONCURRENCY}, got {value}"
        )
    return value


# A secret key must be hard to guess: it signs every CSRF token and private link and is what
# the keys of the second factor, the recovery codes and the remembered visitor derive from.
SECRET_KEY_MIN_DISTINCT = 10
SECRET_KEY_MIN_BITS = 128
# Advice, not a key:
SECRET_KEY_HINT = (
    "set a random one, for example the output of "  # noqa: S105
    "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
)


# The backup key: long enough to be a key rather than a password.
BACKUP_KEY_MIN_LENGTH = 32
BACKUP_KEY_HINT = (
    "generate one with "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' and keep a copy away from "
    "the server and its backups (without it no backup can be restored)"
)


def secret_key_bits(key: str) -> float:
    """An estimate of the key's strength: its length times the Shannon entropy of its characters.

    It is low for a key made of few characters or mostly of one (32 x "a", "test-" + "k" * 40),
    and about 6 bits a character for a random URL-safe key. (It cannot see a repeated pattern:
    the distinct-character rule and the advice to generate the key cover most of that.)
    """
    counts = Counter(key)
    return max(0.0, -sum(n * math.log2(n / len(key)) for n in counts.values()))


def weak_secret_key(key: str) -> str | None:
    """What is wrong with a secret key (one line), or None when it is strong enough."""
    distinct = len(set(key))
    bits = secret_key_bits(key)
    if distinct >= SECRET_KEY_MIN_DISTINCT and bits >= SECRET_KEY_MIN_BITS:
        return None
    return (
        f"{PREFIX}SECRET_KEY is too weak: {distinct} different characters and an estimated "
        f"{bits:.0f} bits (at least {SECRET_KEY_MIN_DISTINCT} and {SECRET_KEY_MIN_BITS} are "
        f"needed); {SECRET_KEY_HINT} (only `nightreg serve --demo` accepts a weak key)"
    )


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """The configured key, or one generated once and kept in the data directory.

    Keeping it on disk means a restart does not log staff out or break remembered visitors.
    """
    configured = _get(env, "SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise SettingsError(f"{PREFIX}SECRET_KEY: use at least 32 characters")
        return configured
    path = data_dir / "secret_key"
    try:
        # O_EXCL: of two processes starting at once, one writes the key and both then read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SettingsError(
            f"{PREFIX}SECRET_KEY is not set and {path} cannot be created: {exc.strerror}"
        ) from exc
    else:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48))
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{PREFIX}SECRET_KEY: cannot read {path}: {exc.strerror}") from exc
    if len(key) < 32:
        raise SettingsError(f"{PREFIX}SECRET_KEY: {path} holds less than 32 characters")
    return key


# /metrics answers scrapers on the same machine unless NIGHTREG_METRICS_ALLOW says otherwise.
METRICS_ALLOW_DEFAULT = ("127.0.0.0/8", "::1/128")
METRICS_TOKEN_MIN_LENGTH = 32


def _networks(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated addresses or networks (CIDR), normalised; `none` for the empty list."""
    raw = (_get(env, name) or "").strip()
    if not raw:
        return default
    if raw.lower() == "none":
        return ()
    out = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name}: not an address or network (CIDR): {part!r}"
            ) from None
    return tuple(dict.fromkeys(out))


def _metrics_token(env: Mapping[str, str]) -> str:
    token = (_get(env, "METRICS_TOKEN") or "").strip()
    if token and len(token) < METRICS_TOKEN_MIN_LENGTH:
        raise SettingsError(
            f"{PREFIX}METRICS_TOKEN: use at least {METRICS_TOKEN_MIN_LENGTH} characters; "
            f"{SECRET_KEY_HINT}"
        )
    return token


@dataclass(frozen=True)
class Settings:
    """Everything configurable; see the README for each variable and its default."""

    data_dir: Path
    database_url: str
    secret_key: str
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Europe/Amsterdam"
    debug: bool = False
    # Kiosk abuse limits: check-in POSTs per client address and per check-in point per minute.
    checkin_rate_per_address: int = 20
    checkin_rate_per_point: int = 120
    # JSON API requests per bearer token per minute.
    api_rate_per_token: int = 600
    # Where the rate limits count (nightreg.ratelimit): "database" (shared by every instance;
    # PostgreSQL only), "memory" (per process), or "auto": the database on PostgreSQL.
    rate_limit_store: Literal["auto", "memory", "database"] = "auto"
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    max_body_bytes: int = 64 * 1024
    # A request body must arrive within this many seconds (plus one second per 64 KiB it
    # declares): a client that trickles it gets 408 and the connection is closed.
    body_timeout_seconds: int = 30
    kiosk_idle_seconds: int = 60
    # Staff sessions end after this long without a request, and after this long in any case.
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    log_level: str = "INFO"
    # The scheduled jobs (crontab strings, 5 fields, in the installation's time zone) and
    # whether `nightreg serve` runs them itself (one machine) or leaves them to a separate
    # `nightreg scheduler` process (several web instances).
    scan_cron: str = "*/10 * * * *"
    overdue_cron: str = "0 * * * *"
    scheduler_in_serve: bool = True
    # AIS listeners that `nightreg scheduler` runs beside the jobs (nightreg.services.ais):
    # NIGHTREG_AIS_LISTEN=SLUG=udp://HOST:PORT[,SLUG=tcp://HOST:PORT…]
    ais_listen: tuple[tuple[str, str], ...] = ()
    # A job's lease lasts this long unless renewed; a heartbeat renews it this often while the
    # job runs. A holder that dies frees its job within the lease's seconds.
    job_lease_seconds: int = 90
    job_heartbeat_seconds: int = 30
    # The key shared with the hub for the watchlist's keyed hashes (HMAC-SHA256). Empty:
    # no watchlist can be imported or matched.
    watchlist_key: str = ""
    # Delivery of signals to the hub (docs/hub.md). No URL: signals wait in the outbox for
    # the hub to pull them over the API. The secret signs every POST (HMAC-SHA256); the key
    # id names it, so that the hub can accept an old and a new key while they rotate. The
    # installation id names this installation in every request (signed with it); required
    # with a hub URL. An empty key id means the installation's own default, `<id>-k1`.
    dispatch_cron: str = "* * * * *"
    installation_id: str = ""
    hub_url: str = ""
    hub_secret: str = ""
    hub_key_id: str = ""
    hub_timeout_seconds: int = 10
    # POSTs to the hub in flight at once (the capacity a hub plans for).
    dispatch_concurrency: int = 16
    # How long a signal is retried (network errors, 408, 429, 5xx) before it is given up.
    hub_retry_days: int = 7
    # Retention (the purge job; README "Retention"): days, unless a site's policy says
    # otherwise for visits and flags. The reasons for each default are in the README.
    purge_cron: str = "30 3 * * *"
    retention_visit_days: int = 365
    retention_open_flag_days: int = 365
    retention_dismissed_flag_days: int = 30
    # For forwarded flags and their signals when no agreement says (an agreement's keep_days).
    retention_forwarded_flag_days: int = 180
    retention_audit_days: int = 730
    retention_job_run_days: int = 90
    retention_aggregate_years: int = 7
    # The roles that must sign in with a second factor (TOTP); the others may choose to.
    # NIGHTREG_TWO_FACTOR_ROLES: comma-separated role names, or `none`.
    two_factor_roles: tuple[str, ...] = ("admin", "analyst", "auditor")
    # The audit chain's key (HMAC-SHA256; README "Audit trail"): NIGHTREG_AUDIT_KEY, else
    # derived from the secret key. Old keys (comma-separated, the values once set as
    # NIGHTREG_AUDIT_KEY or NIGHTREG_SECRET_KEY) keep the events written under them verifiable.
    audit_key: str = ""
    audit_keys_old: tuple[str, ...] = ()
    # Where signed checkpoints of the chain are appended (JSON lines); None: DATA_DIR/audit.
    audit_checkpoint_dir: Path | None = None
    # How long the detail records of searches (terms, filters, e-mails typed at sign-in) live.
    retention_audit_search_days: int = 30

    @property
    def checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.data_dir / "audit"

    # Who may read /metrics (nightreg.web.metrics): a scraper with this bearer token, or one
    # whose address is in these networks (CIDRs; loopback by default; empty: token only).
    metrics_token: str = ""
    metrics_allow: tuple[str, ...] = METRICS_ALLOW_DEFAULT

    # A sign-in attempt refused because of the wait is answered after this pause: it costs the
    # server a sleeping coroutine, and an attacker who waits for each answer most of their rate.
    sign_in_refusal_pause_ms: int = 1000
    # `nightreg serve --demo`: a throwaway installation, which may run with a weak secret key.
    demo: bool = False
    # Backups (README "Backups"; nightreg.services.backup): the key every backup file is
    # encrypted with (required for `nightreg backup` and the nightly job), older keys that
    # still open older files, the folder of the nightly job (None: no nightly backup), how many
    # of its files are kept, and when it runs: after the purge (03:30, at most 25 minutes), so
    # that a night's backup never holds what that night's purge deleted.
    backup_key: str = ""
    backup_keys_old: tuple[str, ...] = ()
    backup_dir: Path | None = None
    backup_keep: int = 7
    backup_cron: str = "30 4 * * *"

    def require_strong_secret_key(self) -> None:
        """Refuse to serve with a guessable secret key (except the demo); SettingsError."""
        problem = None if self.demo else weak_secret_key(self.secret_key)
        if problem:
            raise SettingsError(problem)

    def production_problems(self) -> list[str]:
        """What makes these settings unfit to serve real visitors, each with what to change.

        Empty for the demo. `nightreg serve` and `nightreg scheduler` refuse to start while
        the list is not empty (require_production_ready).
        """
        if self.demo:
            return []
        problems = []
        weak = weak_secret_key(self.secret_key)
        if weak:
            problems.append(weak)
        parts = urlsplit(self.base_url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            https_url = "https://" + self.base_url.removeprefix("http://")
            problems.append(
                f"{PREFIX}BASE_URL is {self.base_url}: staff passwords, session cookies and "
                f"visitors' details would cross the network in clear; set {PREFIX}BASE_URL="
                f"{https_url} and terminate TLS at a reverse proxy (docs/operations.md); "
                "http:// is accepted only for a loopback address (127.0.0.1, ::1, localhost)"
            )
        if self.debug:
            problems.append(
                f"{PREFIX}DEBUG is on: error pages would show tracebacks (code, paths, values) "
                f"to anyone; set {PREFIX}DEBUG=false (or leave it unset)"
            )
        return problems

    def require_production_ready(self) -> None:
        """Refuse to start with settings unfit for real use (except the demo): SettingsError
        whose message lists every problem, one a line."""
        problems = self.production_problems()
        if len(problems) == 1:
            raise SettingsError(problems[0])
        if problems:
            raise SettingsError(
                f"{len(problems)} settings must change before this can run outside "
                "`nightreg serve --demo`:\n" + "\n".join(f"  - {p}" for p in problems)
            )

    @property
    def hub_signing_key_id(self) -> str:
        """The key id the hub knows this installation's secret by."""
        return self.hub_key_id or default_key_id(self.installation_id)

    def require_hub_sender(self) -> None:
        """Refuse to push to a hub without an installation id to sign with; SettingsError."""
        if self.hub_url and not self.installation_id:
            raise SettingsError(
                f"{PREFIX}INSTALLATION_ID: signals to {self.hub_url} name their sender; set an "
                "id the hub knows this installation by (letters, digits, - and _, for example "
                "jachthaven-hoorn)"
            )

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        # Longer than most: one line per environment variable, in the order the README lists them.
        env = os.environ if env is None else env
        data_dir = Path(_get(env, "DATA_DIR") or "data").expanduser().resolve()
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(
                f"{PREFIX}DATA_DIR: cannot create {data_dir}: {exc.strerror}"
            ) from exc
        database_url = _get(env, "DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir}/nightreg.db"
        if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
            # A plain libpq URL is what operators copy from their provider; use the async driver.
            database_url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
        if not database_url.startswith(
            ("sqlite+aiosqlite:", "postgresql+asyncpg:", "postgresql+psycopg:")
        ):
            raise SettingsError(
                f"{PREFIX}DATABASE_URL: use sqlite+aiosqlite:///FILE, postgresql+asyncpg://… "
                "or postgresql+psycopg://…"
            )
        base_url = (_get(env, "BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise SettingsError(
                f"{PREFIX}BASE_URL: expected http(s)://host[:port], got {base_url!r}"
            )
        timezone = _get(env, "TIMEZONE") or "Europe/Amsterdam"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{PREFIX}TIMEZONE: unknown time zone {timezone!r}") from None
        proxies = tuple(
            p.strip() for p in (_get(env, "TRUSTED_PROXIES") or "").split(",") if p.strip()
        )
        job_lease_seconds = _int(env, "JOB_LEASE_SECONDS", 90, minimum=2)
        job_heartbeat_seconds = _int(env, "JOB_HEARTBEAT_SECONDS", 30, minimum=1)
        if job_heartbeat_seconds * 2 > job_lease_seconds:
            raise SettingsError(
                f"{PREFIX}JOB_HEARTBEAT_SECONDS ({job_heartbeat_seconds}) must be at most half of "
                f"{PREFIX}JOB_LEASE_SECONDS ({job_lease_seconds}), so that a late renewal does not "
                "lose the lease; a third is advised (30 and 90 by default)"
            )
        hub_url = (_get(env, "HUB_URL") or "").strip()
        hub_secret = _get(env, "HUB_SECRET") or ""
        if hub_url:
            problem = hub_url_problem(hub_url)
            if problem:
                raise SettingsError(f"{PREFIX}HUB_URL: {problem}")
            if len(hub_secret) < 32:
                raise SettingsError(
                    f"{PREFIX}HUB_SECRET: signals to {hub_url} are signed; "
                    "set a secret of at least 32 characters"
                )
        installation_id = (_get(env, "INSTALLATION_ID") or "").strip()
        if installation_id and not INSTALLATION_ID_RE.fullmatch(installation_id):
            raise SettingsError(
                f"{PREFIX}INSTALLATION_ID: use 1 to 64 letters, digits, - and _ "
                f"(starting with a letter or digit), got {installation_id!r}"
            )
        hub_key_id = (_get(env, "HUB_KEY_ID") or "").strip()
        if hub_key_id and not KEY_ID_RE.fullmatch(hub_key_id):
            raise SettingsError(
                f"{PREFIX}HUB_KEY_ID: use up to 100 letters, digits, ., - and _, got {hub_key_id!r}"
            )
        backup_key = _get(env, "BACKUP_KEY") or ""
        backup_dir = Path(d).expanduser().resolve() if (d := _get(env, "BACKUP_DIR")) else None
        if backup_key and len(backup_key) < BACKUP_KEY_MIN_LENGTH:
            raise SettingsError(
                f"{PREFIX}BACKUP_KEY: use at least {BACKUP_KEY_MIN_LENGTH} characters; "
                + BACKUP_KEY_HINT
            )
        if backup_dir is not None and not backup_key:
            raise SettingsError(
                f"{PREFIX}BACKUP_DIR is set, so backups are made every night: set "
                f"{PREFIX}BACKUP_KEY too (they are encrypted with it); " + BACKUP_KEY_HINT
            )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            secret_key=_secret_key(env, data_dir),
            base_url=base_url,
            timezone=timezone,
            debug=_bool(env, "DEBUG", False),
            checkin_rate_per_address=_int(env, "CHECKIN_RATE_PER_ADDRESS", 20, minimum=1),
            checkin_rate_per_point=_int(env, "CHECKIN_RATE_PER_POINT", 120, minimum=1),
            api_rate_per_token=_int(env, "API_RATE_PER_TOKEN", 600, minimum=1),
            rate_limit_store=_rate_limit_store(env, database_url),
            trusted_proxies=proxies,
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            body_timeout_seconds=_int(env, "BODY_TIMEOUT_SECONDS", 30, minimum=1),
            kiosk_idle_seconds=_int(env, "KIOSK_IDLE_SECONDS", 60, minimum=10),
            session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 30, minimum=1),
            session_absolute_hours=_int(env, "SESSION_ABSOLUTE_HOURS", 12, minimum=1),
            log_level=(_get(env, "LOG_LEVEL") or "INFO").upper(),
            scan_cron=_cron(env, "SCAN_CRON", "*/10 * * * *"),
            overdue_cron=_cron(env, "OVERDUE_CRON", "0 * * * *"),
            scheduler_in_serve=_bool(env, "SCHEDULER_IN_SERVE", True),
            ais_listen=_ais_listen(env),
            job_lease_seconds=job_lease_seconds,
            job_heartbeat_seconds=job_heartbeat_seconds,
            watchlist_key=_get(env, "WATCHLIST_KEY") or "",
            dispatch_cron=_cron(env, "DISPATCH_CRON", "* * * * *"),
            installation_id=installation_id,
            hub_url=hub_url,
            hub_secret=hub_secret,
            hub_key_id=hub_key_id,
            hub_timeout_seconds=_int(env, "HUB_TIMEOUT_SECONDS", 10, minimum=1),
            dispatch_concurrency=_dispatch_concurrency(env),
            hub_retry_days=_int(env, "HUB_RETRY_DAYS", 7, minimum=1),
            purge_cron=_cron(env, "PURGE_CRON", "30 3 * * *"),
            retention_visit_days=_int(env, "RETENTION_VISIT_DAYS", 365, minimum=1),
            retention_open_flag_days=_int(env, "RETENTION_OPEN_FLAG_DAYS", 365, minimum=1),
            retention_dismissed_flag_days=_int(env, "RETENTION_DISMISSED_FLAG_DAYS", 30, minimum=1),
            retention_forwarded_flag_days=_int(
                env, "RETENTION_FORWARDED_FLAG_DAYS", 180, minimum=1
            ),
            retention_audit_days=_int(env, "RETENTION_AUDIT_DAYS", 730, minimum=30),
            retention_job_run_days=_int(env, "RETENTION_JOB_RUN_DAYS", 90, minimum=1),
            retention_aggregate_years=_int(env, "RETENTION_AGGREGATE_YEARS", 7, minimum=1),
            two_factor_roles=_roles(env, "TWO_FACTOR_ROLES", ("admin", "analyst", "auditor")),
            audit_key=_get(env, "AUDIT_KEY") or "",
            audit_keys_old=tuple(
                k.strip() for k in (_get(env, "AUDIT_KEYS_OLD") or "").split(",") if k.strip()
            ),
            audit_checkpoint_dir=(
                Path(d).expanduser().resolve() if (d := _get(env, "AUDIT_CHECKPOINT_DIR")) else None
            ),
            retention_audit_search_days=_int(env, "RETENTION_AUDIT_SEARCH_DAYS", 30, minimum=1),
            sign_in_refusal_pause_ms=_int(env, "SIGN_IN_REFUSAL_PAUSE_MS", 1000),
            backup_key=backup_key,
            backup_keys_old=tuple(
                k.strip() for k in (_get(env, "BACKUP_KEYS_OLD") or "").split(",") if k.strip()
            ),
            backup_dir=backup_dir,
            backup_keep=_int(env, "BACKUP_KEEP", 7, minimum=1),
            backup_cron=_cron(env, "BACKUP_CRON", "30 4 * * *"),
            metrics_token=_metrics_token(env),
            metrics_allow=_networks(env, "METRICS_ALLOW", METRICS_ALLOW_DEFAULT),
        )
