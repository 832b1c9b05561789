"""NMEA 0183 AIS sentences to positions: what the listener needs of a receiver's stream.

A receiver sends `!AIVDM` lines (and `!AIVDO` for its own ship), optionally behind an NMEA 4.0
tag block whose `c:` field is the time of reception (`\\c:1766000000*hh\\!AIVDM,...`). Only the
messages that carry a position and an MMSI matter (types 1, 2, 3, 18, 19 and 27); the rest is
counted and skipped before pyais sees it. A position of the same MMSI within `min_interval`
seconds of the last one decoded adds nothing the debouncing needs, so it is skipped too (read
cheaply from the payload's first characters): a busy harbour's stream, or a flood, costs a few
microseconds per sentence. Bad input of every kind is counted, never raised.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import reduce
from operator import xor

from pyais import NMEAMessage
from pyais.exceptions import InvalidNMEAMessageException

# Longer lines are no AIS sentence (82 characters, plus a tag block of a few dozen).
MAX_LINE = 400
# Message types with a position: class A (1, 2, 3), class B (18, 19), long range (27).
POSITION_TYPES = frozenset({1, 2, 3, 18, 19, 27})
# The shortest payload (in characters of six bits) that holds each type's position.
MIN_PAYLOAD = {1: 26, 2: 26, 3: 26, 18: 24, 19: 24, 27: 15}
# Fragments of a multi-part message that waited longer than this are dropped.
FRAGMENT_SECONDS = 30.0
MAX_PENDING = 256
# The per-MMSI "last decoded" memory is forgotten wholesale beyond this many MMSIs (a flood of
# invented ones must not grow memory).
MAX_MMSIS = 100_000
# A tag block time beyond this is in milliseconds (some receivers write them).
MILLISECONDS = 100_000_000_000

# What the counters mean (the listener logs them). Every line lands in one of these; a
# multi-part message's lines are each counted as "fragments", and the whole once more.
COUNTS = (
    "positions",  # decoded positions handed on
    "throttled",  # a position of an MMSI decoded less than min_interval ago
    "other_types",  # AIS messages without a position (static data, base stations, ...)
    "not_ais",  # another NMEA sentence, or an empty line
    "bad_checksum",
    "corrupt",  # unreadable, truncated or too long
    "fragments",  # a part of a multi-part message (counted when it arrives)
)


@dataclass(frozen=True, slots=True)
class Position:
    mmsi: str
    lat: float
    lon: float
    at: float  # seconds since the epoch, UTC


def _six_bit(char: int) -> int:
    value = char - 48
    return value - 8 if value > 40 else value


def _type_and_mmsi(payload: bytes) -> tuple[int, int]:
    """The message type and the MMSI, read from the payload's first seven characters."""
    bits = 0
    for char in payload[1:7]:
        bits = (bits << 6) | _six_bit(char)
    return _six_bit(payload[0]), (bits >> 4) & 0x3FFFFFFF


def tag_time(tag: bytes) -> float | None:
    """The `c:` time of a tag block (without its backslashes) whose checksum is right."""
    body, star, checksum = tag.rpartition(b"*")
    if not star or len(checksum) != 2:
        return None
    try:
        if reduce(xor, body, 0) != int(checksum, 16):
            return None
    except ValueError:
        return None
    for field in body.split(b","):
        if field.startswith(b"c:"):
            try:
                value = float(field[2:])
            except ValueError:
                return None
            if value <= 0:
                return None
            return value / 1000 if value > MILLISECONDS else value
    return None


class Decoder:
    """Lines in, positions out; `counts` says what happened to every line."""

    def __init__(self, *, min_interval: float = 10.0) -> None:
        self.min_interval = min_interval
        self.counts: Counter[str] = Counter()
        self.bad_tags = 0
        self._last: dict[int, float] = {}
        # The type and MMSI of each payload start seen (a boat's reports all start alike), and
        # the last tag block read with its time.
        self._heads: dict[bytes, tuple[int, int]] = {}
        self._tag = b""
        self._tag_time: float | None = None
        # (channel, sequence id, fragment count) -> (time of the first part, parts so far)
        self._pending: dict[tuple[bytes, bytes, bytes], tuple[float, list[NMEAMessage]]] = {}

    def feed(self, line: bytes, received: float) -> Position | None:
        line = line.strip()
        at = received
        if line[:1] == b"\\":
            end = line.find(b"\\", 1)
            if end < 0:
                self.counts["corrupt"] += 1
                return None
            tag = line[1:end]
            # A receiver stamps whole seconds: the sentences of one second share their tag.
            if tag == self._tag:
                stamp = self._tag_time
            else:
                stamp = self._tag_time = tag_time(tag)
                self._tag = tag
            if stamp is None:
                self.bad_tags += 1
            else:
                at = stamp
            line = line[end + 1 :]
        if len(line) > MAX_LINE:
            self.counts["corrupt"] += 1
            return None
        if not (line.startswith(b"!AIVDM,") or line.startswith(b"!AIVDO,")):
            self.counts["not_ais" if not line or line[:1] in b"!$" else "corrupt"] += 1
            return None
        fields = line.split(b",")
        if len(fields) != 7 or not fields[5]:
            self.counts["corrupt"] += 1
            return None
        if fields[1] != b"1":
            return self._fragment(line, fields, at)
        payload = fields[5]
        if len(payload) < 7:
            self.counts["corrupt"] += 1
            return None
        head = payload[:7]
        known = self._heads.get(head)
        if known is None:
            if len(self._heads) >= MAX_MMSIS:
                self._heads.clear()
            known = self._heads[head] = _type_and_mmsi(payload)
        kind, mmsi = known
        if kind not in POSITION_TYPES:
            self.counts["other_types"] += 1
            return None
        if len(payload) < MIN_PAYLOAD[kind]:
            self.counts["corrupt"] += 1
            return None
        last = self._last.get(mmsi)
        if last is not None and 0 <= at - last < self.min_interval:
            self.counts["throttled"] += 1
            return None
        try:
            message = NMEAMessage(line)
        except (InvalidNMEAMessageException, ValueError, IndexError):
            self.counts["corrupt"] += 1
            return None
        return self._position(message, at)

    def _position(self, message: NMEAMessage, at: float) -> Position | None:
        if not message.is_valid:
            self.counts["bad_checksum"] += 1
            return None
        try:
            decoded = message.decode()
        except Exception:
            self.counts["corrupt"] += 1
            return None
        lat = getattr(decoded, "lat", None)
        lon = getattr(decoded, "lon", None)
        mmsi = getattr(decoded, "mmsi", None)
        if lat is None or lon is None or not isinstance(mmsi, int):
            self.counts["other_types"] += 1
            return None
        # 91 and 181 mean "not available"; anything else out of range is a broken payload.
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0) or not 0 < mmsi < 10**9:
            self.counts["corrupt"] += 1
            return None
        if len(self._last) >= MAX_MMSIS:
            self._last.clear()
        self._last[mmsi] = at
        self.counts["positions"] += 1
        return Position(f"{mmsi:09d}", float(lat), float(lon), at)

    def _fragment(self, line: bytes, fields: list[bytes], at: float) -> Position | None:
        """One part of a multi-part message; the whole once its last part arrived."""
        self.counts["fragments"] += 1
        try:
            part = NMEAMessage(line)
        except (InvalidNMEAMessageException, ValueError, IndexError):
            self.counts["corrupt"] += 1
            return None
        if not part.is_valid:
            self.counts["bad_checksum"] += 1
            return None
        key = (fields[4], fields[3], fields[1])
        if part.frag_num == 1:
            self._expire(at)
            self._pending[key] = (at, [part])
            return None
        pending = self._pending.get(key)
        if pending is None or len(pending[1]) != part.frag_num - 1:
            self._pending.pop(key, None)  # a part missing: the message cannot be whole
            return None
        pending[1].append(part)
        if part.frag_num < part.frag_cnt:
            return None
        del self._pending[key]
        whole = NMEAMessage.assemble_from_iterable(pending[1])
        return self._position(whole, pending[0])

    def _expire(self, now: float) -> None:
        if len(self._pending) < MAX_PENDING:
            return
        for key, (started, _parts) in list(self._pending.items()):
            if now - started > FRAGMENT_SECONDS or len(self._pending) >= MAX_PENDING:
                del self._pending[key]
