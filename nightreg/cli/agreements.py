"""`nightreg agreement list|add|edit|end`: sharing agreements from the server's shell."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nightreg.cli.common import CommandError, with_database
from nightreg.clock import SystemClock, local_day
from nightreg.db import Database
from nightreg.models import SharingAgreement
from nightreg.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from nightreg.services.agreements import AgreementInvalid, AgreementRow


def _problem(exc: AgreementInvalid) -> str:
    """Every field at fault, one after another, in the source language."""
    parts = []
    for field, error in exc.errors.items():
        text = error.message % error.params if error.params else error.message
        parts.append(f"{field}: {text}")
    return "; ".join(parts)


def _validity(agreement: SharingAgreement) -> str:
    until = agreement.valid_until.isoformat() if agreement.valid_until else "open-ended"
    return f"{agreement.valid_from.isoformat()}..{until}"


def cmd_agreement_list(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import agreements
    from nightreg.services.access import CLI

    now = SystemClock().now()

    async def work(db: Database) -> list[AgreementRow]:
        return await agreements.list_agreements(db, CLI, now=now, tz=settings.tz)

    rows = with_database(settings, work)
    if not rows:
        print("No sharing agreements: nothing can be forwarded to the hub.")
        return 0
    for row in rows:
        a = row.agreement
        state = row.state.replace("_", " ")
        rules = ",".join(agreements.rules_of(a)) or "-"
        auto = ",".join(agreements.auto_rules_of(a)) or "-"
        print(
            f"{a.id}\t{a.reference}\t{a.name}\t{a.recipient}\t{_validity(a)}\t{state}\t"
            f"rules {rules}\tautomatic {auto}\tkeep {a.keep_days} days\t"
            f"signal format up to {a.max_schema}"
        )
    return 0


def cmd_agreement_add(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import agreements
    from nightreg.services.access import CLI

    now = SystemClock().now()
    values = {
        "name": args.name,
        "recipient": args.recipient,
        "reference": args.reference,
        "valid_from": args.valid_from or local_day(now, settings.tz).isoformat(),
        "valid_until": args.valid_until or "",
        "rules": args.rule or [],
        "fields": args.field or [],
        "auto_rules": args.auto or [],
        "keep_days": args.keep_days or "",
        "share_audit_checkpoints": args.share_audit_checkpoints,
        "max_schema": args.max_schema or "",
    }

    async def work(db: Database) -> SharingAgreement:
        return await agreements.create(db, CLI, values, now=now, tz=settings.tz)

    try:
        agreement = with_database(settings, work)
    except agreements.AgreementInvalid as exc:
        raise CommandError(_problem(exc)) from exc
    fields = ", ".join(agreements.fields_of(agreement))
    print(
        f"Agreement {agreement.id} ({agreement.reference}, {_validity(agreement)}) made: "
        f"rules {', '.join(agreements.rules_of(agreement))}; fields {fields}; "
        f"keep {agreement.keep_days} days."
    )
    return 0


def _change_agreement(
    settings: Settings,
    args: argparse.Namespace,
    change: Callable[[Database, datetime], Awaitable[SharingAgreement]],
) -> SharingAgreement:
    """Run a change of agreement `args.id` (the service's call), with its refusals as the
    command's one-line errors."""
    from nightreg.services import agreements
    from nightreg.services.access import NotFound

    now = SystemClock().now()
    try:
        return with_database(settings, lambda db: change(db, now))
    except NotFound:
        raise CommandError(f"no agreement with id {args.id}") from None
    except agreements.AgreementInvalid as exc:
        raise CommandError(_problem(exc)) from exc


def cmd_agreement_edit(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import agreements
    from nightreg.services.access import CLI

    agreement = _change_agreement(
        settings, args,
        lambda db, now: agreements.set_max_schema(db, CLI, args.id, args.max_schema, now=now),
    )  # fmt: skip
    print(
        f"Agreement {agreement.id} ({agreement.reference}): signals forwarded from now on are "
        f"built in signal format {agreement.max_schema} at most."
    )
    return 0


def cmd_agreement_end(settings: Settings, args: argparse.Namespace) -> int:
    from nightreg.services import agreements
    from nightreg.services.access import CLI

    agreement = _change_agreement(
        settings, args, lambda db, now: agreements.end(db, CLI, args.id, args.reason, now=now)
    )
    print(
        f"Agreement {agreement.id} ({agreement.reference}) ended; nothing more is forwarded "
        "under it."
    )
    return 0


def add_commands(sub: Any) -> None:
    """Add `agreement` to the `nightreg` command's subcommands."""
    from nightreg.rules import RULES
    from nightreg.services.agreements import FIELDS, SIGNAL_FORMATS

    forwardable = [code for code, rule in RULES.items() if rule.forwardable]
    agreement = sub.add_parser("agreement", help="sharing agreements with the hub")
    agreement_sub = agreement.add_subparsers(dest="agreement_command", required=True)

    listing = agreement_sub.add_parser("list", help="every agreement with its state")
    listing.set_defaults(func=cmd_agreement_list)

    add = agreement_sub.add_parser("add", help="make an agreement (audited)")
    add.add_argument("name", help="how staff and the hub know it")
    add.add_argument("--recipient", required=True, help="who receives the signals")
    add.add_argument("--reference", required=True, help="the partners' number for it")
    add.add_argument(
        "--from", dest="valid_from", metavar="DATE", help="first day in force (default: today)"
    )
    add.add_argument(
        "--until", dest="valid_until", metavar="DATE", help="last day in force (default: none)"
    )
    add.add_argument(
        "--rule", action="append", choices=forwardable, help="a rule it covers; repeat for more"
    )
    add.add_argument(
        "--field",
        action="append",
        choices=list(FIELDS),
        help="a field signals may carry (rule and reason always); repeat for more",
    )
    add.add_argument(
        "--auto",
        action="append",
        choices=forwardable,
        help="a covered rule forwarded without a staff review; repeat for more",
    )
    add.add_argument("--keep-days", help="days the sender keeps forwarded data (default 180)")
    add.add_argument(
        "--share-audit-checkpoints",
        action="store_true",
        help="signals carry the audit chain's newest signed checkpoint (README: the audit trail)",
    )
    formats = ", ".join(str(v) for v in SIGNAL_FORMATS)
    schema_help = (
        "the newest major version of the signal format (nightreg.signal/N) the hub accepts; "
        f"this installation builds {formats} (docs/hub.md: versions of the format)"
    )
    add.add_argument("--max-schema", metavar="N", help=schema_help + "; default 1")
    add.set_defaults(func=cmd_agreement_add)

    edit = agreement_sub.add_parser(
        "edit", help="change what the agreement's hub accepts (audited); nothing else changes"
    )
    edit.add_argument("id", type=int)
    edit.add_argument("--max-schema", metavar="N", required=True, help=schema_help)
    edit.set_defaults(func=cmd_agreement_edit)

    end = agreement_sub.add_parser("end", help="end an agreement now (audited)")
    end.add_argument("id", type=int)
    end.add_argument("--reason", required=True, help="kept with the agreement and audited")
    end.set_defaults(func=cmd_agreement_end)
