"""`nightreg export register|flags` and `nightreg import register`: a site's register as a file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock
from nightreg.db import Database
from nightreg.settings import Settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_export_register(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import sites, transfer
    from nightreg.services.access import CLI

    fmt = args.format or ("json" if str(args.out).endswith(".json") else "csv")

    async def work(db: Database) -> None:
        try:
            site = await sites.get_site(db, args.site)
        except sites.SiteError as exc:
            raise CommandError(str(exc)) from exc
        chunks = transfer.export_register(
            db,
            CLI,
            site.id,
            date_from=args.date_from,
            date_to=args.date_to,
            fmt=fmt,
            delimiter=delimiter,
            sheet_locale=args.sheet_language,
            now=SystemClock().now(),
        )
        await _write_export(chunks, args.out)

    delimiter = args.delimiter or transfer_defaults(args.sheet_language)
    with_database(settings, work)
    if args.out != "-":
        print(f"Register of {args.site} written to {args.out} ({fmt}).", file=sys.stderr)
    return 0


def transfer_defaults(language: str | None) -> str:
    """The delimiter a spreadsheet in this language expects (a comma without one)."""
    from nightreg.services.transfer import DEFAULT_DELIMITERS

    return DEFAULT_DELIMITERS.get(language or "en", ",")


def cmd_export_flags(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import flag_export, sites
    from nightreg.services.access import CLI

    fmt = args.format or ("json" if str(args.out).endswith(".json") else "csv")

    async def work(db: Database) -> None:
        try:
            site = await sites.get_site(db, args.site)
        except sites.SiteError as exc:
            raise CommandError(str(exc)) from exc
        chunks = flag_export.export_flags(
            db,
            CLI,
            site.id,
            date_from=args.date_from,
            date_to=args.date_to,
            status=args.status,
            fmt=fmt,
            now=SystemClock().now(),
        )
        await _write_export(chunks, args.out)

    with_database(settings, work)
    if args.out != "-":
        print(f"Flags of {args.site} written to {args.out} ({fmt}).", file=sys.stderr)
    return 0


def _describe(report: Any) -> list[str]:
    from nightreg.services.register_import import row_message

    if report.format == "Excel":
        source = f"Excel, sheet {report.sheet!r}"
    else:
        delimiter = "tab" if report.delimiter == "\t" else repr(report.delimiter)
        source = f"{report.encoding}, separated by {delimiter}"
    lines = [
        f"{report.rows} rows read ({source}): {report.new} new, "
        f"{report.existing} already in the register"
        + (f" ({report.updated} with newer values)" if report.update else "")
        + f", {report.bad_rows} refused; {report.imported} imported"
        + (f", {report.updated} updated" if report.update and not report.dry_run else "")
        + (" (dry run: nothing written)" if report.dry_run else "")
        + "."
    ]
    if report.ok and not report.dry_run and report.imported == 0 and not report.updated:
        lines.append("Nothing new: the register already holds every row of this file.")
    if report.mapped:
        lines.append("Columns: " + ", ".join(f"{h} -> {f}" for h, f in report.mapped) + ".")
    if report.ignored_columns:
        columns = ", ".join(report.ignored_columns)
        lines.append(
            f"Columns not recognised, not read: {columns} (map one with --map 'HEADER=FIELD')."
        )
    headers = {name: header for header, name in report.mapped}
    for row in report.errors[:100]:
        for name, error in row.errors.items():
            column = f" (column {headers[name]})" if name in headers else ""
            lines.append(f"row {row.line}: {row_message(error)}{column}")
    hidden = report.bad_rows - min(len(report.errors), 100)
    if hidden > 0:
        lines.append(f"… and {hidden} more refused rows.")
    return lines


def _mapping(args: argparse.Namespace) -> dict[str, str]:
    """--mapping FILE (HEADER=FIELD lines, or a JSON object) and then every --map."""
    import json

    from nightreg.services.import_columns import parse_mapping_pairs

    pairs: list[str] = []
    if args.mapping:
        path = Path(args.mapping)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise CommandError(f"{args.mapping}: {exc.strerror}") from exc
        if text.lstrip().startswith("{"):
            try:
                loaded = json.loads(text)
            except ValueError as exc:
                raise CommandError(f"{args.mapping}: not JSON ({exc})") from exc
            if not isinstance(loaded, dict):
                raise CommandError(f"{args.mapping}: a JSON object of HEADER: FIELD, please")
            pairs += [f"{k}={v}" for k, v in loaded.items()]
        else:
            pairs += text.splitlines()
    pairs += args.map or []
    try:
        return parse_mapping_pairs(pairs)
    except ValueError as exc:
        raise CommandError(f"mapping: {exc}") from exc


def cmd_import_register(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import register_import, sites
    from nightreg.services.access import CLI

    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"{args.file}: no such file")
    mapping = _mapping(args)

    async def work(db: Database) -> register_import.ImportReport:
        try:
            site = await sites.get_site(db, args.site)
        except sites.SiteError as exc:
            raise CommandError(str(exc)) from exc
        with path.open("rb") as stream:  # noqa: ASYNC230 - the command's only task
            try:
                return await register_import.import_register(
                    db,
                    CLI,
                    site.id,
                    stream,
                    filename=path.name,
                    now=SystemClock().now(),
                    dry_run=args.dry_run,
                    update=args.update,
                    mapping=mapping,
                    sheet=args.sheet,
                    remember=bool(mapping),
                )
            except register_import.ImportFileError as exc:
                hint = ""
                if "column" in str(exc):
                    hint = " (name a column's field with --map 'HEADER=FIELD' or --mapping FILE)"
                raise CommandError(f"{args.file}: {exc}{hint}; nothing was imported") from exc

    report = with_database(settings, work)
    for line in _describe(report):
        print(line)
    if not report.ok:
        print("Nothing was imported: fix the rows above and try again.")
        return 1
    return 0


def add_commands(sub: Any) -> None:
    export = sub.add_parser("export", help="write a site's register or its flags to a file")
    export_sub = export.add_subparsers(dest="export_command", required=True)
    register = export_sub.add_parser(
        "register", help="the register of one site as CSV (UTF-8 with BOM) or JSON"
    )
    register.add_argument("--site", required=True, help="the site's slug")
    register.add_argument("--from", dest="date_from", type=_date, help="first local date")
    register.add_argument("--to", dest="date_to", type=_date, help="last local date, inclusive")
    register.add_argument(
        "--format", choices=("csv", "json"), help="default: from --out's extension, else csv"
    )
    register.add_argument(
        "--delimiter",
        choices=(",", ";"),
        help="CSV cell separator (default , or, with --sheet-language nl/de, ;)",
    )
    register.add_argument(
        "--sheet-language",
        choices=("nl", "en", "de"),
        help="for a spreadsheet: headers in this language, times like 2026-12-05 23:15"
        " (the import reads it back)",
    )
    register.add_argument(
        "--out",
        "--output",
        dest="out",
        default="-",
        help="the file to write; - for stdout (default)",
    )
    register.set_defaults(func=cmd_export_register)
    flags = export_sub.add_parser(
        "flags", help="the flags of one site with their evidence visits, as CSV or JSON"
    )
    flags.add_argument("--site", required=True, help="the site's slug")
    flags.add_argument("--from", dest="date_from", type=_date, help="first local date")
    flags.add_argument("--to", dest="date_to", type=_date, help="last local date, inclusive")
    flags.add_argument(
        "--status",
        choices=("open", "watching", "forwarded", "dismissed", "expired"),
        help="only flags with this status (default: any)",
    )
    flags.add_argument(
        "--format", choices=("csv", "json"), help="default: from --out's extension, else csv"
    )
    flags.add_argument(
        "--out", "--output", dest="out", default="-", help="the file to write; - for stdout"
    )
    flags.set_defaults(func=cmd_export_flags)

    imp = sub.add_parser("import", help="read a register from a file")
    imp_sub = imp.add_subparsers(dest="import_command", required=True)
    reg_in = imp_sub.add_parser(
        "register",
        help="a register (CSV or .xlsx, Dutch/English/German headers) into a site: all rows"
        " or none; rows already in the register are not imported again",
    )
    reg_in.add_argument("--site", required=True, help="the site's slug")
    reg_in.add_argument("file", help="the CSV or .xlsx file")
    reg_in.add_argument(
        "--dry-run", action="store_true", help="check every row and report; write nothing"
    )
    reg_in.add_argument(
        "--update",
        action="store_true",
        help="replace the stored values of rows already in the register with the file's"
        " (each changed visit audited)",
    )
    reg_in.add_argument(
        "--map",
        action="append",
        metavar="HEADER=FIELD",
        help="what a column holds, e.g. --map 'Naam schipper=guest_name' --map 'Box=berth'"
        " (FIELD 'skip' skips it); remembered for the site",
    )
    reg_in.add_argument(
        "--mapping", metavar="FILE", help="HEADER=FIELD lines or a JSON object, as --map"
    )
    reg_in.add_argument("--sheet", help="the .xlsx sheet to read (default: the first)")
    reg_in.set_defaults(func=cmd_import_register)


async def _write_export(chunks: AsyncIterator[bytes], target: str) -> None:
    """Write an export's chunks to the file `target` ("-": standard output).

    The first chunk is taken before the file is opened: the service checks and audits the
    request there, so a refused export leaves no empty file behind. A blocking open is fine
    here: the command is the only task on its event loop.
    """
    from nightreg.services.transfer import ExportInvalid

    try:
        first = await anext(chunks)
    except ExportInvalid as exc:
        raise CommandError(str(exc)) from exc
    out: BinaryIO = (
        sys.stdout.buffer if target == "-" else Path(target).open("wb")  # noqa: ASYNC230, SIM115
    )
    try:
        out.write(first)
        async for chunk in chunks:
            out.write(chunk)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
