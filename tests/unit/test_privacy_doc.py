"""docs/privacy.md carries what the code says: the generator's blocks, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs import privacy_doc
from nightreg.settings import Settings

FIX = f"docs/privacy.md is out of date: run `{privacy_doc.COMMAND}` and commit the result"


def test_the_privacy_page_is_what_the_generator_makes_of_the_current_code() -> None:
    text = privacy_doc.DOC.read_text(encoding="utf-8")

    assert privacy_doc.render(text) == text, FIX


def test_every_generated_block_sits_between_its_markers_once() -> None:
    text = privacy_doc.DOC.read_text(encoding="utf-8")

    for name in privacy_doc.BLOCKS:
        assert text.count(f"<!-- generated:{name} -->") == 1, name
        assert text.count(f"<!-- /generated:{name} -->") == 1, name


def test_a_page_without_a_block_s_markers_is_refused_not_silently_left_as_it_is() -> None:
    with pytest.raises(privacy_doc.DocError, match="generated:visit-fields"):
        privacy_doc.render("# Privacy\n\nno markers here\n")


def test_the_retention_table_names_the_variables_the_settings_really_read(
    tmp_path: Path,
) -> None:
    rows = privacy_doc.retention_settings()
    assert {name for name, _env, _default in rows} >= {
        "retention_visit_days", "retention_open_flag_days", "retention_dismissed_flag_days",
        "retention_forwarded_flag_days", "retention_audit_days", "retention_job_run_days",
        "retention_aggregate_years", "purge_cron",
    }  # fmt: skip
    base = {"NIGHTREG_DATA_DIR": str(tmp_path), "NIGHTREG_SECRET_KEY": "k" * 40}
    defaults = Settings.from_env(base)
    for name, env, default in rows:
        assert getattr(defaults, name) == default, name
        other = "15 4 * * *" if name == "purge_cron" else str(int(str(default)) + 31)
        changed = Settings.from_env({**base, env: other})
        assert str(getattr(changed, name)) == other, f"{env} does not set {name}"


def test_the_generator_refuses_a_visit_column_it_has_not_been_told_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = {**privacy_doc._visit_columns(), "date_of_birth": True}
    monkeypatch.setattr(privacy_doc, "_visit_columns", lambda: columns)

    with pytest.raises(privacy_doc.DocError, match="date_of_birth"):
        privacy_doc.visit_fields()


def test_the_rules_the_page_lists_are_the_catalogue_with_its_default_thresholds() -> None:
    from nightreg.rules import RULES

    block = privacy_doc.rules()
    for code, rule in RULES.items():
        assert f"#### `{code}`: {rule.title}" in block
        for threshold in rule.thresholds:
            assert f"`{threshold.name}` = {threshold.default}:" in block
