"""The Jinja environment: autoescaping, per-request translations, shared filters."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, Template, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from markupsafe import Markup, escape

from nightreg import __version__, i18n
from nightreg.services.branding import brand_of

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
HTMX_FILE = "htmx-2.0.11.min.js"


@cache
def static_version(directory: Path = STATIC_DIR) -> str:
    """A short hash of every static file: the `?v=` of their URLs (`{{ version }}` in templates).

    A changed stylesheet or script gets a new URL at the next start, so browsers may keep each
    version for a year (nightreg.web.hardening) and still never run an old one.
    """
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(directory.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class _Template(Template):
    """Renders Litestar's `csrf_input` as the hidden field it is, not as escaped text.

    Litestar builds that string itself with the token HTML-escaped, so marking it safe adds
    nothing a visitor controls; `{{ csrf_input }}` then works inside every form.
    """

    def render(self, *args: Any, **kwargs: Any) -> str:
        context = dict(*args, **kwargs)
        if isinstance(context.get("csrf_input"), str):
            context["csrf_input"] = Markup(context["csrf_input"])  # noqa: S704
        return super().render(context)


def make_environment(extra_dirs: Sequence[Path]) -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(d)) for d in (*extra_dirs, TEMPLATE_DIR)]),
        # An environment we build ourselves does not escape unless told to.
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.template_class = _Template
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.globals.update(
        get_locale=i18n.get_locale,
        locales=i18n.LOCALES,
        locale_names=i18n.LOCALE_NAMES,
        country_options=country_options,
        country_name=i18n.country_name,
        htmx_file=HTMX_FILE,
        version=static_version(),
        brand_of=brand_of,
    )
    env.filters["localtime"] = i18n.local_datetime
    env.filters["translate_pair"] = translate_pair
    return env


def translate_pair(pair: tuple[str, str]) -> tuple[str, str]:
    """(code, English label) -> (code, label in the request's language), for <select>s."""
    code, label = pair
    return code, i18n.gettext(label)


def make_template_engine(extra_dirs: Sequence[Path]) -> JinjaTemplateEngine:
    return JinjaTemplateEngine.from_environment(make_environment(extra_dirs))


@cache
def _country_option_tags(locale: str) -> dict[str, str]:
    """code -> '<option value="NL">Nederland</option>', in the order of countries()."""
    return {
        code: f'<option value="{code}">{escape(name)}</option>'
        for code, name in i18n.countries(locale)
    }


def country_options(selected: str | None) -> Markup:
    """The <option>s of a country list in the request's language, `selected` marked.

    Built once per language: three lists of some 250 countries were half the cost of
    rendering the check-in form.
    """
    tags = _country_option_tags(i18n.get_locale())
    html = "".join(tags.values())
    if selected in tags:
        chosen = tags[selected]
        html = html.replace(chosen, chosen.replace('">', '" selected>', 1), 1)
    return Markup(html)  # noqa: S704 - names escaped above; `selected` only as a known code
