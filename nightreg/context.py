"""What a request handler, a CLI command or a job needs: settings, database, clock, helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from nightreg.clock import Clock, SystemClock
from nightreg.db import Database
from nightreg.ratelimit import RateLimits, counter_for
from nightreg.security import CookieBox
from nightreg.services import audit
from nightreg.services.throttle import RefusalTally
from nightreg.services.writer import VisitWriter
from nightreg.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)
    remember_box: CookieBox = field(init=False)
    # The kiosk's and the API's rate limits (in the database all instances share, on
    # PostgreSQL).
    rate_limits: RateLimits = field(init=False)
    visit_writer: VisitWriter = field(init=False)
    # Sign-in attempts refused while throttled, counted until their audit event is written.
    refusals: RefusalTally = field(default_factory=RefusalTally)

    def __post_init__(self) -> None:
        # One set of audit keys a process: every session that writes an event uses them.
        audit.use_keyring(audit.keyring_of(self.settings))
        self.remember_box = CookieBox(self.settings.secret_key, "remember-visitor")
        self.rate_limits = RateLimits(self.settings, counter_for(self.settings, self.db))
        self.visit_writer = VisitWriter(self.db)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> AppContext:
        return cls(
            settings=settings, db=Database(settings.database_url), clock=clock or SystemClock()
        )
