"""`nightreg ais listen|replay`: a harbour's AIS receiver to entries and exits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings


def _source(args: argparse.Namespace) -> Any:
    from nightreg.services.ais.listen import Source

    try:
        if args.udp:
            return Source.parse(f"udp://{args.udp}")
        return Source.parse(f"tcp://{args.tcp}")
    except ValueError as exc:
        raise CommandError(str(exc).replace("udp://", "").replace("tcp://", "")) from None


def cmd_ais_listen(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.ais.listen import AisError, listen

    source = _source(args)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def work(db: Database) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await listen(db, args.site, source, SystemClock(), stop=stop)

    try:
        with_database(settings, work)
    except AisError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot listen on {source}: {exc.strerror or exc}") from exc
    return 0


def cmd_ais_replay(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.ais.listen import AisError, replay

    path = Path(args.file)

    async def work(db: Database) -> Any:
        # A log is read line by line as the replay goes: a day's log need not fit in memory.
        with path.open("rb") as handle:  # noqa: ASYNC230 - a local file, read in a loop
            return await replay(db, args.site, handle, SystemClock())

    try:
        feed = with_database(settings, work)
    except AisError as exc:
        raise CommandError(str(exc)) from exc
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
    print(f"Replayed {path} for {args.site}: {feed.summary()}.")
    return 0


def add_commands(sub: Any) -> None:
    ais = sub.add_parser("ais", help="AIS: a harbour's receiver to entries and exits")
    ais_sub = ais.add_subparsers(dest="ais_command", required=True)
    listen = ais_sub.add_parser("listen", help="read a receiver's NMEA stream until stopped")
    listen.add_argument("--site", required=True)
    where = listen.add_mutually_exclusive_group(required=True)
    where.add_argument("--udp", metavar="HOST:PORT", help="bind here and read datagrams")
    where.add_argument("--tcp", metavar="HOST:PORT", help="connect to the receiver here")
    listen.set_defaults(func=cmd_ais_listen)
    replay = ais_sub.add_parser("replay", help="read a recorded NMEA log (tag-block times)")
    replay.add_argument("--site", required=True)
    replay.add_argument("file")
    replay.set_defaults(func=cmd_ais_replay)
