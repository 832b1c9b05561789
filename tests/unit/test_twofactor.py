"""Two-factor sign-in's parts: TOTP codes and their window, replay, recovery codes, the sealed
secret, and the setting that says which roles must have it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from nightreg.db import Database
from nightreg.models import AuditEvent, User
from nightreg.services import twofactor
from nightreg.services.access import CLI, Actor
from nightreg.services.twofactor import TwoFactorInvalid
from nightreg.settings import Settings, SettingsError
from tests.factories import SUMMER_EVENING, make_staff

KEY = "test-secret-" + "k" * 40
NOW = datetime(2026, 7, 14, 19, 0, 10, tzinfo=UTC)


def code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


# --- codes ------------------------------------------------------------------------------------


def test_the_code_of_now_is_what_any_authenticator_app_computes():
    secret = twofactor.new_secret()
    assert len(secret) == 32
    step = twofactor.matching_step(secret, code(secret, NOW), NOW, None)
    assert step == int(NOW.timestamp()) // 30


def test_a_code_one_step_early_or_late_is_accepted_but_two_steps_is_not():
    secret = twofactor.new_secret()
    for offset, accepted in ((-60, False), (-30, True), (30, True), (60, False)):
        typed = code(secret, NOW + timedelta(seconds=offset))
        found = twofactor.matching_step(secret, typed, NOW, None)
        assert (found is not None) is accepted, offset


def test_spaces_in_a_typed_code_do_not_matter_and_letters_or_short_codes_never_match():
    secret = twofactor.new_secret()
    typed = code(secret, NOW)
    assert twofactor.matching_step(secret, f" {typed[:3]} {typed[3:]} ", NOW, None) is not None
    for wrong in ("", "12345", "abcdef", typed + "0", "１２３４５６"):
        assert twofactor.matching_step(secret, wrong, NOW, None) is None


def test_a_code_whose_step_was_used_already_is_refused_and_so_is_an_older_one():
    secret = twofactor.new_secret()
    step = twofactor.matching_step(secret, code(secret, NOW), NOW, None)
    assert step is not None
    assert twofactor.matching_step(secret, code(secret, NOW), NOW, step) is None
    earlier = code(secret, NOW - timedelta(seconds=30))
    assert twofactor.matching_step(secret, earlier, NOW, step) is None
    later = code(secret, NOW + timedelta(seconds=30))
    assert twofactor.matching_step(secret, later, NOW + timedelta(seconds=30), step) == step + 1


def test_the_provisioning_uri_names_the_issuer_and_the_account():
    uri = twofactor.provisioning_uri("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "havenmeester@example.org")
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert "Nachtregister" in parts.path
    assert "havenmeester%40example.org" in parts.path
    assert query["issuer"] == ["Nachtregister"]
    assert query["secret"] == ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"]


# --- the sealed secret ------------------------------------------------------------------------


def test_the_secret_is_stored_encrypted_and_opens_only_with_the_same_key():
    secret = twofactor.new_secret()
    sealed = twofactor.seal_secret(KEY, secret)
    assert secret not in sealed
    assert twofactor.open_secret(KEY, sealed) == secret
    assert twofactor.open_secret("another-secret-" + "x" * 40, sealed) is None
    assert twofactor.open_secret(KEY, sealed[:-4] + "AAAA") is None
    assert twofactor.open_secret(KEY, None) is None


# --- recovery codes ---------------------------------------------------------------------------


def test_ten_recovery_codes_are_made_each_different_and_readable_aloud():
    codes = twofactor.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes))
    for c in codes:
        assert len(c) == 19
        assert c.count("-") == 3
        assert not set(c) & set("ILOU")


def test_a_recovery_code_s_hash_ignores_case_dashes_and_look_alike_letters():
    h = twofactor.recovery_code_hash(KEY, 7, "7K2M-QX9D-04HT-PZ3A")
    assert twofactor.recovery_code_hash(KEY, 7, "7k2m qx9d o4ht pz3a") == h
    assert twofactor.recovery_code_hash(KEY, 8, "7K2M-QX9D-04HT-PZ3A") != h
    assert twofactor.recovery_code_hash("other-" + "y" * 40, 7, "7K2M-QX9D-04HT-PZ3A") != h


# --- an account's second factor, in the database ----------------------------------------------


async def enrolled(db: Database, role: str = "security") -> tuple[int, str, list[str]]:
    staff = await make_staff(db, role)
    enrolment = await twofactor.begin_enrolment(db, staff.user_id, secret_key=KEY)
    assert enrolment is not None
    actor = Actor(kind="user", id=staff.user_id, name=staff.email, role=role)
    codes = await twofactor.confirm_enrolment(
        db, actor, staff.user_id, code(enrolment.secret, NOW), secret_key=KEY, now=NOW
    )
    return staff.user_id, enrolment.secret, codes


async def load(db: Database, user_id: int) -> User:
    async with db.read() as session:
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def test_enrolment_keeps_the_secret_encrypted_and_only_hashes_of_the_recovery_codes(
    db: Database,
):
    user_id, secret, codes = await enrolled(db)
    user = await load(db, user_id)
    assert user.totp_enabled_at is not None
    assert user.totp_secret
    assert secret not in user.totp_secret
    stored = json.loads(user.recovery_codes or "[]")
    assert len(stored) == 10
    assert not any(c in (user.recovery_codes or "") for c in codes)
    assert not any(c.replace("-", "") in (user.recovery_codes or "") for c in codes)


async def test_reloading_the_enrolment_page_shows_the_same_secret_until_it_is_confirmed(
    db: Database,
):
    staff = await make_staff(db, "auditor")
    first = await twofactor.begin_enrolment(db, staff.user_id, secret_key=KEY)
    second = await twofactor.begin_enrolment(db, staff.user_id, secret_key=KEY)
    assert first is not None
    assert second is not None
    assert first.secret == second.secret


async def test_enrolment_is_not_switched_on_by_a_wrong_code(db: Database):
    staff = await make_staff(db, "auditor")
    enrolment = await twofactor.begin_enrolment(db, staff.user_id, secret_key=KEY)
    assert enrolment is not None
    wrong = code(enrolment.secret, NOW + timedelta(minutes=5))
    with pytest.raises(TwoFactorInvalid):
        await twofactor.confirm_enrolment(db, CLI, staff.user_id, wrong, secret_key=KEY, now=NOW)
    assert (await load(db, staff.user_id)).totp_enabled_at is None


async def test_the_code_that_switched_it_on_cannot_sign_in_again(db: Database):
    user_id, secret, _codes = await enrolled(db)
    user = await load(db, user_id)
    assert await twofactor.verify(db, CLI, user, code(secret, NOW), secret_key=KEY, now=NOW) is None
    later = NOW + timedelta(seconds=30)
    assert (
        await twofactor.verify(db, CLI, user, code(secret, later), secret_key=KEY, now=later)
        == "totp"
    )


async def test_a_code_is_accepted_once_even_from_a_stale_copy_of_the_account(db: Database):
    user_id, secret, _codes = await enrolled(db)
    later = NOW + timedelta(minutes=1)
    stale = await load(db, user_id)  # read before either use: both see the old last step
    typed = code(secret, later)
    assert await twofactor.verify(db, CLI, stale, typed, secret_key=KEY, now=later) == "totp"
    assert await twofactor.verify(db, CLI, stale, typed, secret_key=KEY, now=later) is None


async def test_each_recovery_code_works_once_and_its_use_is_audited(db: Database):
    user_id, _secret, codes = await enrolled(db)
    user = await load(db, user_id)
    used = codes[3].lower().replace("-", " ")
    assert await twofactor.verify(db, CLI, user, used, secret_key=KEY, now=NOW) == "recovery_code"
    user = await load(db, user_id)
    assert await twofactor.verify(db, CLI, user, codes[3], secret_key=KEY, now=NOW) is None
    assert len(json.loads(user.recovery_codes or "[]")) == 9
    assert await twofactor.verify(db, CLI, user, codes[4], secret_key=KEY, now=NOW) == (
        "recovery_code"
    )
    async with db.read() as session:
        events = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "recovery_code_used", AuditEvent.object_id == user_id
                )
            )
        )
    assert [json.loads(e.details)["left"] for e in events] == [9, 8]
    assert not any(codes[3] in e.details for e in events)


async def test_a_made_up_recovery_code_does_not_work(db: Database):
    user_id, _secret, _codes = await enrolled(db)
    user = await load(db, user_id)
    made_up = twofactor.new_recovery_codes(1)[0]
    assert await twofactor.verify(db, CLI, user, made_up, secret_key=KEY, now=NOW) is None


async def test_the_operator_resets_a_locked_out_admin_s_second_factor_by_e_mail(db: Database):
    user_id, _secret, _codes = await enrolled(db, "admin")
    user = await load(db, user_id)

    assert await twofactor.reset_by_email(db, CLI, user.email.upper(), now=NOW) is True

    cleared = await load(db, user_id)
    assert cleared.totp_enabled_at is None
    assert cleared.totp_secret is None
    assert cleared.recovery_codes is None
    async with db.read() as session:
        reset = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "two_factor_reset", AuditEvent.object_id == user_id
            )
        )
    assert reset is not None
    assert reset.actor.startswith("cli")


# --- the setting ------------------------------------------------------------------------------


def test_admins_analysts_and_auditors_must_have_a_second_factor_by_default(tmp_path: Path):
    settings = Settings.from_env({"NIGHTREG_DATA_DIR": str(tmp_path)})
    assert settings.two_factor_roles == ("admin", "analyst", "auditor")


def test_the_roles_that_must_have_a_second_factor_can_be_set_or_be_none(tmp_path: Path):
    base = {"NIGHTREG_DATA_DIR": str(tmp_path)}
    changed = Settings.from_env({**base, "NIGHTREG_TWO_FACTOR_ROLES": " admin, harbour_master "})
    assert changed.two_factor_roles == ("admin", "harbour_master")
    none = Settings.from_env({**base, "NIGHTREG_TWO_FACTOR_ROLES": "none"})
    assert none.two_factor_roles == ()


def test_an_unknown_role_in_the_setting_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(SettingsError, match="NIGHTREG_TWO_FACTOR_ROLES: unknown role 'boss'"):
        Settings.from_env(
            {"NIGHTREG_DATA_DIR": str(tmp_path), "NIGHTREG_TWO_FACTOR_ROLES": "admin,boss"}
        )


def test_the_summer_evening_of_the_other_tests_is_a_whole_step_apart_from_now():
    # The HTTP tests compute codes at the frozen clock's time; it must be a real time step.
    assert twofactor.time_step(SUMMER_EVENING) * 30 == int(SUMMER_EVENING.timestamp())
