"""identity_change: one number under two boat names, or one boat and skipper under two numbers."""

from __future__ import annotations

from datetime import timedelta

from nightreg.rules.base import VisitFacts, fold_name
from nightreg.rules.identity_change import RULE
from tests.unit.rule_facts import run, utc, visit

START = utc(2026, 4, 1, 12)


def boat(
    days: float,
    name: str,
    *,
    registration: str | None = "NL123AB",
    mmsi: str | None = None,
    guest: str = "Jan de Vries",
    kind: str = "vessel",
) -> VisitFacts:
    key = f"reg:{registration}" if registration else f"mmsi:{mmsi}"
    return visit(
        START + timedelta(days=days),
        kind=kind,
        subject_key=key,
        registration=registration,
        mmsi=mmsi,
        vessel_name=fold_name(name),
        guest=fold_name(guest) or "",
    )


def test_a_registration_under_a_new_name_is_flagged() -> None:
    old, new = boat(0, "Zeemeeuw"), boat(40, "Albatros")
    [finding] = run(RULE, [old, new])
    assert finding.subject == "reg:NL123AB"
    assert finding.visit_ids == (old.id, new.id)
    assert (finding.window_start, finding.window_end) == (old.arrived_at, new.arrived_at)
    assert finding.params == {"what": "name", "count": 2, "days": 180}
    assert finding.score == 60


def test_spelling_case_accents_and_dashes_do_not_make_a_new_name() -> None:
    visits = [boat(0, "Zee-Meeuw"), boat(1, "zeemeeuw"), boat(2, "ZEE MEEUW"), boat(3, "Zeeméeuw")]
    assert run(RULE, visits) == []


def test_names_in_other_scripts_are_compared_not_erased() -> None:
    assert len(run(RULE, [boat(0, "Ωμέγα"), boat(5, "Άλφα")])) == 1
    assert run(RULE, [boat(0, "Ωμέγα"), boat(5, "ωμεγα")]) == []


def test_an_mmsi_under_a_new_name_is_flagged_under_the_mmsi() -> None:
    old = boat(0, "Zeemeeuw", registration=None, mmsi="244123456")
    new = boat(10, "Albatros", registration=None, mmsi="244123456")
    [finding] = run(RULE, [old, new])
    assert finding.subject == "mmsi:244123456"


def test_the_same_boat_and_skipper_under_a_new_registration_is_flagged() -> None:
    old, new = boat(0, "Zeemeeuw"), boat(30, "Zee-Meeuw", registration="DE999X")
    [finding] = run(RULE, [old, new])
    assert finding.subject == "name:zeemeeuw|jan de vries"
    assert finding.params == {"what": "number", "count": 2, "days": 180}
    assert finding.visit_ids == (old.id, new.id)


def test_the_same_boat_name_with_another_skipper_is_another_boat() -> None:
    assert (
        run(RULE, [boat(0, "Zeemeeuw"), boat(5, "Zeemeeuw", registration="DE999X", guest="Piet")])
        == []
    )


def test_a_number_given_on_one_visit_only_is_no_change_of_number() -> None:
    with_both = boat(0, "Zeemeeuw", mmsi="244123456")
    mmsi_only = boat(5, "Zeemeeuw", registration=None, mmsi="244123456")
    reg_only = boat(9, "Zeemeeuw")
    assert run(RULE, [with_both, mmsi_only, reg_only]) == []


def test_a_new_mmsi_with_the_same_name_and_skipper_is_a_change() -> None:
    old = boat(0, "Zeemeeuw", registration=None, mmsi="244123456")
    new = boat(5, "Zeemeeuw", registration=None, mmsi="244999999")
    [finding] = run(RULE, [old, new])
    assert finding.params["what"] == "number"


def test_a_rename_exactly_180_days_later_counts_and_a_day_later_does_not() -> None:
    assert len(run(RULE, [boat(0, "Zeemeeuw"), boat(180, "Albatros")])) == 1
    assert run(RULE, [boat(0, "Zeemeeuw"), boat(180 + 1 / 1440, "Albatros")]) == []


def test_the_evidence_is_the_visits_around_the_change_only() -> None:
    long_ago = boat(0, "Zeemeeuw")
    before, after = boat(400, "Zeemeeuw"), boat(410, "Albatros")
    [finding] = run(RULE, [long_ago, before, after])
    assert finding.visit_ids == (before.id, after.id)


def test_three_names_are_counted() -> None:
    [finding] = run(RULE, [boat(0, "Zeemeeuw"), boat(10, "Albatros"), boat(20, "Reiger")])
    assert finding.params["count"] == 3
    assert finding.score == 70


def test_vehicles_and_nameless_boats_are_not_looked_at() -> None:
    vans = [boat(0, "Zeemeeuw", kind="vehicle"), boat(5, "Albatros", kind="vehicle")]
    nameless = [boat(0, ""), boat(5, "Albatros")]
    assert run(RULE, vans) == []
    assert run(RULE, nameless) == []


def test_the_input_may_mix_boats_and_comes_out_the_same_in_any_order() -> None:
    visits = [
        boat(0, "Zeemeeuw"),
        boat(3, "Albatros"),
        boat(1, "Reiger", registration="BE1"),
        boat(2, "Reiger", registration="BE1"),
    ]
    findings = run(RULE, visits)
    assert [f.subject for f in findings] == ["reg:NL123AB"]
    assert findings == run(RULE, list(reversed(visits)))


def test_a_site_can_shorten_the_window() -> None:
    visits = [boat(0, "Zeemeeuw"), boat(40, "Albatros")]
    assert run(RULE, visits, overrides={"days": 30}) == []
