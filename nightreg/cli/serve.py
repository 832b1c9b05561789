"""`nightreg serve [--host] [--port] [--demo]`: migrate, maybe seed the demo, and serve the app."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Any

from nightreg import migrate
from nightreg.cli.common import with_database
from nightreg.clock import SystemClock
from nightreg.settings import Settings

# `--demo` without NIGHTREG_INSTALLATION_ID: the id its signals to a hub carry.
DEMO_INSTALLATION_ID = "demo"


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from nightreg.app import create_app
    from nightreg.services.demo import seed_demo
    from nightreg.services.sites import kiosk_url

    if args.demo:
        settings = dataclasses.replace(settings, demo=True)
        if not settings.installation_id:
            settings = dataclasses.replace(settings, installation_id=DEMO_INSTALLATION_ID)
    # Pushing to a hub needs an installation id to sign with.
    settings.require_hub_sender()
    if not os.environ.get("NIGHTREG_BASE_URL") and not os.environ.get("NIGHTREG_BASE_URL_FILE"):
        # Unconfigured, the links we print and put in QR codes point where we actually serve.
        host = "127.0.0.1" if args.host in {"0.0.0.0", "::", ""} else args.host  # noqa: S104
        settings = dataclasses.replace(settings, base_url=f"http://{host}:{args.port}")
    # Before anything is migrated or served: a guessable key, an http:// address others use
    # and debug mode are refused outside the demo (all of them named at once).
    settings.require_production_ready()
    migrate.upgrade(settings.database_url)
    if args.demo:
        login = with_database(settings, lambda db: seed_demo(db, SystemClock().now()))
        print("Nachtregister demo is ready.")
        print(f"  Staff sign-in: {settings.base_url}/admin/  {login.email} / {login.password}")
        if "admin" in settings.two_factor_roles:
            print(
                "  The first sign-in sets up two-factor sign-in: have an authenticator app ready"
                " (or start with NIGHTREG_TWO_FACTOR_ROLES=none to use the password alone)."
            )
        for site_name, point_name, token in login.points:
            print(f"  Kiosk {site_name} / {point_name}: {kiosk_url(settings.base_url, token)}")
        sys.stdout.flush()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    uvicorn.run(
        create_app(settings, run_scheduler=settings.scheduler_in_serve),
        host=args.host,
        port=args.port,
        # Our own request log leaves tokens out of the paths; uvicorn's would print them.
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        log_level=settings.log_level.lower(),
    )
    return 0


def add_commands(sub: Any) -> None:
    serve = sub.add_parser("serve", help="migrate the database and serve the app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--demo", action="store_true", help="seed a demo marina and business park and print logins"
    )
    serve.set_defaults(func=cmd_serve)
