"""The AIS listener: a receiver's NMEA stream (UDP, TCP or a recorded log) to movements.

One `Feed` per site: lines go through the decoder (nightreg.services.ais.nmea) and the
tracker (nightreg.services.ais.tracker); the transitions wait in memory and are written every
few seconds (nightreg.services.ais.store). Nothing else is kept: no position, no log.

- UDP (`udp://HOST:PORT`): the listener binds the port; a receiver that stops and starts
  again simply sends again.
- TCP (`tcp://HOST:PORT`): the listener connects to the receiver (AIS-catcher, rtl-ais and
  most boxes serve NMEA on a TCP port) and, when the connection drops or cannot be made,
  tries again with a growing pause (1 s doubling to a minute).
- A log file (`nightreg ais replay`): each line's time from its tag block.

Bad input never stops it: every line is counted under what happened to it, and the counts
are logged every minute. A flood beyond MAX_RATE lines a second is counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nightreg.clock import Clock
from nightreg.db import Database
from nightreg.services.ais import store
from nightreg.services.ais.area import Area
from nightreg.services.ais.harbour import harbour
from nightreg.services.ais.nmea import Decoder
from nightreg.services.ais.tracker import Tracker, Transition

log = logging.getLogger("nightreg.ais")

# Live sources: more lines a second than any receiver sends is a flood (a busy coast sees a
# few hundred).
MAX_RATE = 5000
FLUSH_SECONDS = 5.0
LOG_SECONDS = 60.0
MAX_BACKOFF = 60.0
# Transitions waiting for the database beyond this are dropped (a database that is gone for
# long); counted.
MAX_WAITING = 10_000
# A replay writes in batches of this many transitions.
REPLAY_BATCH = 1000


class AisError(Exception):
    """The site cannot listen: unknown, AIS switched off, or no harbour area."""


@dataclass(frozen=True)
class Source:
    scheme: str  # "udp" | "tcp"
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Source:
        """`udp://HOST:PORT`, `tcp://HOST:PORT`; ValueError otherwise."""
        scheme, sep, rest = text.partition("://")
        host, colon, port = rest.rpartition(":")
        if not sep or scheme not in ("udp", "tcp") or not colon or not host or not port.isdigit():
            raise ValueError(f"expected udp://HOST:PORT or tcp://HOST:PORT, got {text!r}")
        if not 0 < int(port) < 65536:
            raise ValueError(f"port out of range in {text!r}")
        return cls(scheme, host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


class Feed:
    """One site's stream: lines in, transitions waiting to be written."""

    def __init__(
        self,
        site_id: int,
        area: Area,
        *,
        known: dict[str, str] | None = None,
        rate_limit: int | None = None,
        min_interval: float = 10.0,
    ) -> None:
        self.site_id = site_id
        self.decoder = Decoder(min_interval=min_interval)
        self.tracker = Tracker(area, known=known)
        self.waiting: list[Transition] = []
        self.counts: Counter[str] = self.decoder.counts
        self.rate_limit = rate_limit
        self._second = 0
        self._in_second = 0
        self.last_at = 0.0

    def line(self, raw: bytes, received: float) -> None:
        if self.rate_limit is not None:
            second = int(received)
            if second != self._second:
                self._second, self._in_second = second, 0
            self._in_second += 1
            if self._in_second > self.rate_limit:
                self.counts["flood"] += 1
                return
        position = self.decoder.feed(raw, received)
        if position is None:
            return
        self.last_at = position.at
        transition = self.tracker.observe(position.mmsi, position.lat, position.lon, position.at)
        if transition is not None:
            self.counts["transitions"] += 1
            if len(self.waiting) >= MAX_WAITING:
                self.counts["dropped_transitions"] += 1
                return
            self.waiting.append(transition)

    def lines(self, data: bytes, received: float) -> None:
        for raw in data.splitlines():
            self.line(raw, received)

    def take(self) -> list[Transition]:
        waiting, self.waiting = self.waiting, []
        return waiting

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"{parts or 'nothing yet'}; tracking {len(self.tracker)} MMSIs"


async def open_feed(
    db: Database,
    slug: str,
    clock: Clock,
    *,
    rate_limit: int | None = MAX_RATE,
    remember: bool = True,
    min_interval: float = 10.0,
) -> Feed:
    """The site's feed (AisError if the site may not listen). `remember`: it knows which
    MMSIs were last recorded inside, so a restarted listener records no entry again; a
    replayed log starts from nothing (its times lie before that), and a movement it repeats
    is written once anyway."""
    from nightreg.services.access import NotFound

    try:
        setting = await harbour(db, slug)
    except NotFound:
        raise AisError(f"no site {slug!r}") from None
    if not setting.enabled:
        raise AisError(
            f"AIS is off for {slug}: an admin switches it on (with the DPIA reference) on the "
            "site's page"
        )
    if setting.area is None:
        raise AisError(
            f"{slug} has no harbour area: nightreg site area {slug} --lat LAT --lon LON "
            "--radius-m M (a circle), or --polygon 'LAT,LON;LAT,LON;LAT,LON' or --polygon-file "
            "FILE (a polygon: one corner per line, or GeoJSON)"
        )
    known = await store.known_sides(db, setting.site_id, now=clock.now()) if remember else {}
    return Feed(
        setting.site_id, setting.area, known=known, rate_limit=rate_limit,
        min_interval=min_interval,
    )  # fmt: skip


async def flush(db: Database, feed: Feed, clock: Clock) -> int:
    """Write the waiting transitions; on a database error they wait for the next flush."""
    waiting = feed.take()
    if not waiting:
        return 0
    try:
        written = await store.record(db, feed.site_id, waiting, now=clock.now())
    except Exception:
        log.exception("AIS movements not written yet (%s waiting)", len(waiting))
        feed.waiting[:0] = waiting[: MAX_WAITING - len(feed.waiting)]
        return 0
    feed.counts["written"] += written
    return written


async def replay(
    db: Database,
    slug: str,
    lines: Iterable[bytes],
    clock: Clock,
    *,
    now: float | None = None,
    min_interval: float = 10.0,
) -> Feed:
    """Feed a recorded log (tag-block times; lines without one take `now`) and write what it
    shows. The per-MMSI memory is forgotten as the log's time moves on."""
    feed = await open_feed(
        db, slug, clock, rate_limit=None, remember=False, min_interval=min_interval
    )
    received = clock.now().timestamp() if now is None else now
    next_forget = 0.0
    for raw in lines:
        feed.line(raw, received)
        if len(feed.waiting) >= REPLAY_BATCH:
            await flush(db, feed, clock)
        if feed.last_at > next_forget:
            feed.tracker.forget(feed.last_at)
            next_forget = feed.last_at + LOG_SECONDS
    await flush(db, feed, clock)
    return feed


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        try:
            self.feed.lines(data, time.time())
        except Exception:  # the listener outlives any line
            self.feed.counts["errors"] += 1
            log.exception("AIS datagram skipped")


async def _keep_flushing(db: Database, feed: Feed, clock: Clock, label: str) -> None:
    last_log = time.monotonic()
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        await flush(db, feed, clock)
        if time.monotonic() - last_log >= LOG_SECONDS:
            last_log = time.monotonic()
            # On the stream's own clock (tag blocks), which may differ from ours.
            feed.tracker.forget(feed.last_at or time.time())
            log.info("AIS %s: %s", label, feed.summary())


async def _read_tcp(feed: Feed, source: Source, stop: asyncio.Event) -> None:
    """Connect, read lines until the receiver goes away, connect again (with backoff)."""
    pause = 1.0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(source.host, source.port, limit=4096)
        except OSError as exc:
            feed.counts["connect_failures"] += 1
            log.warning("AIS %s: cannot connect (%s); again in %.0f s", source, exc, pause)
        else:
            feed.counts["connections"] += 1
            log.info("AIS %s: connected", source)
            pause = 1.0
            try:
                while not stop.is_set():
                    try:
                        raw = await reader.readuntil(b"\n")
                    except asyncio.LimitOverrunError as exc:
                        feed.counts["corrupt"] += 1
                        await reader.readexactly(exc.consumed)  # skip the overlong line
                        continue
                    except asyncio.IncompleteReadError:
                        break
                    try:
                        feed.line(raw, time.time())
                    except Exception:
                        feed.counts["errors"] += 1
                        log.exception("AIS line skipped")
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            log.warning("AIS %s: connection closed; again in %.0f s", source, pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        pause = min(pause * 2, MAX_BACKOFF)


async def listen(
    db: Database,
    slug: str,
    source: Source,
    clock: Clock,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[Feed], None] | None = None,
) -> Feed:
    """Listen until `stop` is set (or for ever); the transitions are written as they come."""
    stop = stop or asyncio.Event()
    feed = await open_feed(db, slug, clock)
    label = f"{slug} {source}"
    flusher = asyncio.create_task(_keep_flushing(db, feed, clock, label))
    transport = None
    reader = None
    try:
        if source.scheme == "udp":
            loop = asyncio.get_running_loop()
            transport, _protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(feed), local_addr=(source.host, source.port)
            )
            log.info("AIS %s: listening", label)
        else:
            reader = asyncio.create_task(_read_tcp(feed, source, stop))
        if ready is not None:
            ready(feed)
        await stop.wait()
    finally:
        if transport is not None:
            transport.close()
        for task in (reader, flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await flush(db, feed, clock)
        log.info("AIS %s stopped: %s", label, feed.summary())
    return feed


async def listen_forever(
    db: Database, slug: str, source: Source, clock: Clock, stop: asyncio.Event
) -> None:
    """For the scheduler: listen, and if the site cannot (switched off, no area), say so and
    look again every minute, so that switching AIS on needs no restart."""
    while not stop.is_set():
        try:
            await listen(db, slug, source, clock, stop=stop)
        except AisError as exc:
            log.warning("AIS %s: %s", slug, exc)
        except OSError as exc:  # the UDP port is taken, for one
            log.error("AIS %s %s: %s", slug, source, exc)
        except Exception:
            log.exception("AIS %s: listener failed; starting again", slug)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60)
