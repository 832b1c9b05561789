"""`nightreg site add|cameras`, `nightreg point add|rotate`, `nightreg qr`: sites, points, QR
posters, and a site's gate cameras."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings
from nightreg.vocabulary import SITE_KINDS


def cmd_site_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.sites import SiteError, create_site

    async def work(db: Database) -> None:
        await create_site(
            db,
            slug=args.slug,
            name=args.name,
            kind=args.kind,
            municipality=args.municipality,
            contact=args.contact,
            timezone=args.timezone or settings.timezone,
            now=SystemClock().now(),
        )

    try:
        with_database(settings, work)
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    print(f"Site {args.slug} created.")
    return 0


def cmd_site_area(settings: Settings, args: argparse.Namespace) -> int:
    """Set a marina's harbour area (a circle, or a polygon) and switch AIS on or off."""
    from nightreg.services.access import CLI, NotFound
    from nightreg.services.ais.harbour import AisInvalid, change_ais

    circle = (args.lat, args.lon, args.radius_m)
    polygon: str | None = args.polygon
    if args.polygon_file is not None:
        try:
            polygon = Path(args.polygon_file).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {args.polygon_file}: {exc}") from None
    if polygon is not None and any(v is not None for v in circle):
        raise CommandError("give a circle (--lat, --lon, --radius-m) or a polygon, not both")
    if any(v is not None for v in circle) and None in circle:
        raise CommandError("give all three of --lat, --lon and --radius-m")
    shape = "polygon" if polygon is not None else "circle" if args.lat is not None else None
    enabled = True if args.enable else False if args.disable else None

    async def work(db: Database) -> dict[str, Any]:
        return await change_ais(
            db, CLI, args.slug, enabled=enabled, dpia_reference=args.dpia,
            lat=args.lat, lon=args.lon, radius_m=args.radius_m, polygon=polygon, shape=shape,
            now=SystemClock().now(), keep_area=shape is None,
        )  # fmt: skip

    try:
        changes = with_database(settings, work)
    except NotFound:
        raise CommandError(f"no site {args.slug!r}") from None
    except AisInvalid as invalid:
        raise CommandError(
            "; ".join(
                f"{name}: {e.message % dict(e.params) if e.params else e.message}"
                for name, e in invalid.errors.items()
            )
        ) from None
    print(f"Site {args.slug}: " + (", ".join(sorted(changes)) + " changed." if changes else
                                  "nothing changed."))  # fmt: skip
    return 0


def cmd_site_cameras(settings: Settings, args: argparse.Namespace) -> int:
    """Switch a site's gate cameras on (with the DPIA's reference) or off; audited."""
    from nightreg.services.access import CLI, NotFound
    from nightreg.services.sightings import CamerasInvalid, set_cameras

    async def work(db: Database) -> None:
        await set_cameras(
            db, CLI, args.slug, enabled=args.state == "on", dpia_reference=args.dpia or "",
            now=SystemClock().now(),
        )  # fmt: skip

    try:
        with_database(settings, work)
    except CamerasInvalid as exc:
        raise CommandError(
            "--dpia: give the reference of the DPIA that covers the cameras"
        ) from exc
    except NotFound as exc:
        raise CommandError(f"there is no site {args.slug}") from exc
    print(f"Gate cameras of {args.slug} are {args.state}.")
    return 0


def cmd_point(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services.sites import SiteError, add_point, kiosk_url, rotate_point

    async def work(db: Database) -> str:
        now = SystemClock().now()
        if args.point_command == "add":
            point = await add_point(
                db, site_slug=args.site, name=args.name, kiosk_mode=args.kiosk, now=now
            )
        else:
            point = await rotate_point(db, args.site, args.name, now)
        return point.token

    try:
        token = with_database(settings, work)
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    if args.point_command == "rotate":
        print("The old QR code no longer works. Print the new poster with `nightreg qr`.")
    print(kiosk_url(settings.base_url, token))
    return 0


def cmd_qr(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.qr import poster
    from nightreg.services.branding import logo_of
    from nightreg.services.sites import SiteError, get_point, kiosk_url

    try:
        point = with_database(settings, lambda db: get_point(db, args.site, args.point))
    except SiteError as exc:
        raise CommandError(str(exc)) from exc
    # A branded site's poster carries its logo and accent colour, as the staff page's does.
    logo = with_database(settings, lambda db: logo_of(db, point.site_id))
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() or "pdf")
    if fmt not in {"svg", "png", "pdf"}:
        raise CommandError(f"format {fmt!r}: use svg, png or pdf")
    data = poster(
        kiosk_url(settings.base_url, point.token), point.site.name, point.name, fmt,
        logo=logo.data if logo else None, accent=point.site.accent_colour,
    )  # fmt: skip
    try:
        Path(args.out).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from exc
    print(f"Poster for {point.site.name} / {point.name} written to {args.out} ({fmt}).")
    return 0


def add_commands(sub: Any) -> None:
    site = sub.add_parser("site", help="sites")
    site_sub = site.add_subparsers(dest="site_command", required=True)
    site_add = site_sub.add_parser("add", help="create a site")
    site_add.add_argument("slug")
    site_add.add_argument("--name", required=True)
    site_add.add_argument("--kind", required=True, choices=SITE_KINDS)
    site_add.add_argument("--municipality", default="")
    site_add.add_argument("--contact", default="", help="shown in the privacy notice")
    site_add.add_argument("--timezone", default=None)
    site_add.set_defaults(func=cmd_site_add)
    site_area = site_sub.add_parser(
        "area",
        help="a marina's AIS harbour area (a circle or a polygon), and the AIS switch",
        description="The harbour area is a circle (--lat, --lon, --radius-m) or a polygon "
        "(--polygon or --polygon-file); setting one clears the other.",
    )
    site_area.add_argument("slug")
    site_area.add_argument("--lat", type=float, default=None, help="centre, degrees north")
    site_area.add_argument("--lon", type=float, default=None, help="centre, degrees east")
    site_area.add_argument("--radius-m", type=int, default=None, help="radius in metres")
    polygon = site_area.add_mutually_exclusive_group()
    polygon.add_argument(
        "--polygon",
        default=None,
        metavar="'LAT,LON;LAT,LON;...'",
        help="the corners in order around the harbour (3 to 100; south or west of 0: "
        "--polygon=-33.86,151.2;...)",
    )
    polygon.add_argument(
        "--polygon-file",
        default=None,
        metavar="FILE",
        help="the corners from a file: one 'lat, lon' per line, or GeoJSON (a Polygon, or a "
        "Feature with one)",
    )
    site_area.add_argument("--dpia", default=None, help="the DPIA reference (to switch AIS on)")
    switch = site_area.add_mutually_exclusive_group()
    switch.add_argument("--enable", action="store_true", help="switch AIS on (needs --dpia)")
    switch.add_argument("--disable", action="store_true", help="switch AIS off")
    site_area.set_defaults(func=cmd_site_area)
    cameras = site_sub.add_parser(
        "cameras", help="switch a site's gate camera sightings on (with --dpia) or off"
    )
    cameras.add_argument("slug")
    cameras.add_argument("state", choices=("on", "off"))
    cameras.add_argument("--dpia", default=None, help="the reference of the DPIA (to switch on)")
    cameras.set_defaults(func=cmd_site_cameras)

    point = sub.add_parser("point", help="check-in points (QR codes)")
    point_sub = point.add_subparsers(dest="point_command", required=True)
    point_add = point_sub.add_parser("add", help="create a point and print its kiosk URL")
    point_add.add_argument("site")
    point_add.add_argument("name")
    point_add.add_argument(
        "--kiosk", action="store_true", help="a shared tablet: no 'remember me', resets itself"
    )
    point_rotate = point_sub.add_parser("rotate", help="new URL for a point; the old QR dies")
    point_rotate.add_argument("site")
    point_rotate.add_argument("name")
    point.set_defaults(func=cmd_point)

    qr = sub.add_parser("qr", help="write a point's printable QR poster")
    qr.add_argument("site")
    qr.add_argument("point")
    qr.add_argument("--out", required=True)
    qr.add_argument("--format", choices=("svg", "png", "pdf"), default=None)
    qr.set_defaults(func=cmd_qr)
