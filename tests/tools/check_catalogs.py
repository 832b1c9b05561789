"""CI check: the message template, the translated catalogs and the shipped .mo files agree."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import PoFileError, read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = ROOT / "nightreg" / "i18n"
TEMPLATE = CATALOG_DIR / "messages.pot"
DOMAIN = "messages"
# English is the source language: its catalog keeps empty msgstrs. These must be complete.
TRANSLATED_LOCALES = ("nl", "de")

EXTRACT_ARGS = ("-F", "babel.cfg", "-k", "N_", "--no-location", "--sort-output")
EXTRACT_HINT = "pybabel extract " + " ".join(EXTRACT_ARGS) + " -o nightreg/i18n/messages.pot ."
UPDATE_HINT = "pybabel update -i nightreg/i18n/messages.pot -d nightreg/i18n"
COMPILE_HINT = "pybabel compile -d nightreg/i18n"

# A named printf-style placeholder as Python's % operator reads it: %(site)s, %(max)d, ...
PLACEHOLDER = re.compile(r"%\([^)]*\)[#0 +\-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z]")

MessageKey = tuple[str | None, str | tuple[str, ...]]
MessageText = str | tuple[str, ...]


def _texts(value: object) -> MessageText:
    """A msgid or msgstr as a hashable value: a string, or a tuple for plural forms."""
    if isinstance(value, list | tuple):
        return tuple(str(part) for part in value)
    return "" if value is None else str(value)


def _key(message: Message) -> MessageKey:
    return (message.context, _texts(message.id))


def _describe(key: MessageKey) -> str:
    context, msgid = key
    text = repr(msgid[0] if isinstance(msgid, tuple) else msgid)
    return f"{text} (context {context!r})" if context else text


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _messages(catalog: Catalog) -> Iterator[Message]:
    """Every message of a catalog except the header."""
    return (message for message in catalog if message.id)


def _read_po(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale, domain=DOMAIN)


def _mo_contents(catalog: Catalog) -> dict[MessageKey, MessageText]:
    return {_key(message): _texts(message.string) for message in _messages(catalog)}


def _extract() -> tuple[Catalog | None, str]:
    """The template as the sources give it now, or None and why extraction failed."""
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "messages.pot"
        command = [sys.executable, "-m", "babel.messages.frontend", "-q", "extract"]
        command += [*EXTRACT_ARGS, "-o", str(output), "."]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not output.exists():
            lines = (result.stderr or result.stdout).strip().splitlines()
            return None, lines[-1] if lines else f"exit code {result.returncode}"
        return _read_po(output), ""


def check_template(template: Catalog) -> Iterator[str]:
    """(a) The committed template holds exactly the msgids found in the sources."""
    fresh, error = _extract()
    if fresh is None:
        yield f"{_rel(TEMPLATE)}: could not re-extract the messages from the sources: {error}"
        return
    committed = {_key(message) for message in _messages(template)}
    current = {_key(message) for message in _messages(fresh)}
    for key in sorted(current - committed, key=_describe):
        yield (
            f"{_rel(TEMPLATE)}: out of date: {_describe(key)} is in the sources but not in the "
            f"template (run: {EXTRACT_HINT})"
        )
    for key in sorted(committed - current, key=_describe):
        yield (
            f"{_rel(TEMPLATE)}: out of date: {_describe(key)} is in the template but no longer "
            f"in the sources (run: {EXTRACT_HINT})"
        )


def check_translated(template: Catalog, path: Path, catalog: Catalog) -> Iterator[str]:
    """(b) A translated catalog has every msgid of the template, translated and not fuzzy."""
    wanted = {_key(message) for message in _messages(template)}
    for message in _messages(template):
        key = _key(message)
        found = catalog.get(message.id, context=message.context)
        if found is None:
            yield f"{_rel(path)}: {_describe(key)} is missing (run: {UPDATE_HINT})"
            continue
        strings = _texts(found.string)
        forms = strings if isinstance(strings, tuple) else (strings,)
        if not all(forms) or (isinstance(strings, tuple) and len(forms) < catalog.num_plurals):
            yield f"{_rel(path)}: {_describe(key)} is not translated"
        elif found.fuzzy:
            yield f"{_rel(path)}: {_describe(key)} is marked fuzzy; check it and remove the flag"
    for message in _messages(catalog):
        if _key(message) not in wanted:
            yield (
                f"{_rel(path)}: {_describe(_key(message))} is not in the template "
                f"(run: {UPDATE_HINT})"
            )


def check_compiled(path: Path, catalog: Catalog) -> Iterator[str]:
    """(c) The shipped .mo holds what compiling the .po gives (contents, not bytes)."""
    mo_path = path.with_suffix(".mo")
    if catalog.fuzzy:
        yield f"{_rel(path)}: the catalog header is marked fuzzy, so it would not be compiled"
        return
    if not mo_path.exists():
        yield f"{_rel(mo_path)}: missing (run: {COMPILE_HINT})"
        return
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    expected_catalog = read_mo(compiled)
    with mo_path.open("rb") as file:
        try:
            shipped_catalog = read_mo(file)
        except (OSError, UnicodeDecodeError) as exc:
            yield f"{_rel(mo_path)}: cannot be read ({exc}) (run: {COMPILE_HINT})"
            return
    expected, shipped = _mo_contents(expected_catalog), _mo_contents(shipped_catalog)
    stale = f"out of date with {path.name}"
    run = f"(run: {COMPILE_HINT})"
    for key in sorted(expected.keys() - shipped.keys(), key=_describe):
        yield f"{_rel(mo_path)}: {stale}: {_describe(key)} is missing {run}"
    for key in sorted(shipped.keys() - expected.keys(), key=_describe):
        yield f"{_rel(mo_path)}: {stale}: {_describe(key)} should not be there {run}"
    for key in sorted(expected.keys() & shipped.keys(), key=_describe):
        if expected[key] != shipped[key]:
            yield f"{_rel(mo_path)}: {stale}: {_describe(key)} has another translation {run}"
    if expected_catalog.plural_forms != shipped_catalog.plural_forms:
        yield f"{_rel(mo_path)}: {stale}: the Plural-Forms header differs {run}"


def _placeholders(texts: Iterable[str]) -> set[str]:
    return {match for text in texts for match in PLACEHOLDER.findall(text)}


def check_placeholders(path: Path, catalog: Catalog) -> Iterator[str]:
    """(d) Every msgstr uses the placeholders of its msgid, no more and no fewer."""
    for message in _messages(catalog):
        ids = _texts(message.id)
        strings = _texts(message.string)
        wanted = _placeholders(ids if isinstance(ids, tuple) else (ids,))
        forms = [form for form in (strings if isinstance(strings, tuple) else (strings,)) if form]
        if not forms:
            continue
        # A plural form may leave out the count (as "one" often does), but none may add one
        # the code does not pass, and together the forms use them all.
        used = _placeholders(forms)
        extra, lost = sorted(used - wanted), sorted(wanted - used)
        if extra or lost:
            parts = []
            if extra:
                parts.append(f"unknown {', '.join(extra)}")
            if lost:
                parts.append(f"missing {', '.join(lost)}")
            detail = "; ".join(parts)
            yield (
                f"{_rel(path)}: the placeholders of {_describe(_key(message))} differ "
                f"in its msgstr: {detail}"
            )


def catalog_paths() -> list[Path]:
    return sorted(CATALOG_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def problems() -> Iterator[str]:
    if not TEMPLATE.exists():
        yield f"{_rel(TEMPLATE)}: missing (run: {EXTRACT_HINT})"
        return
    template = _read_po(TEMPLATE)
    yield from check_template(template)
    paths = {path.parent.parent.name: path for path in catalog_paths()}
    for locale in TRANSLATED_LOCALES:
        if locale not in paths:
            path = CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
            yield f"{_rel(path)}: missing"
    for locale, path in sorted(paths.items()):
        try:
            catalog = _read_po(path, locale)
        except (OSError, ValueError, PoFileError) as exc:  # report it, check the others
            yield f"{_rel(path)}: cannot be read: {exc}"
            continue
        if locale in TRANSLATED_LOCALES:
            yield from check_translated(template, path, catalog)
        yield from check_compiled(path, catalog)
        yield from check_placeholders(path, catalog)


def main() -> int:
    found = list(problems())
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"{len(found)} problem(s) in the catalogs", file=sys.stderr)
        return 1
    print("catalogs ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
