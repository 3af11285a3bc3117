"""The password policy (docs/design.md §6) and the initial passwords sent by SMS."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from idp.auth.passwords import (
    generate_initial_password,
    hash_password,
    needs_rehash,
    policy_errors,
    verify_password,
)

PHONE = "13800138000"
SHORT = "密码至少 8 位"
LONG = "密码最多 128 位"
CLASSES = "密码须包含大写字母、小写字母、数字、符号中的至少三类"
HAS_PHONE = "密码不能包含手机号"
SAME = "新密码不能与原密码相同"


@pytest.mark.parametrize(
    "password",
    [
        "Abcdefg1",  # exactly 8, upper + lower + digit
        "abcdefg-1",  # lower + symbol + digit
        "ABCDEFG-1",  # upper + symbol + digit
        "Abcdefg-",  # upper + lower + symbol
        "abcdef密码1",  # a non-ASCII character counts as a symbol
        "Ab-1" + "x" * 124,  # exactly 128
        "Ab1-1380013800",  # ten digits of the phone are not the phone
    ],
)
def test_acceptable_passwords_have_no_errors(password):
    assert policy_errors(password, phone=PHONE, old_hash=None) == []


@pytest.mark.parametrize(
    ("password", "errors"),
    [
        ("Abcde1-", [SHORT]),
        ("", [SHORT, CLASSES]),
        ("Ab-1" + "x" * 125, [LONG]),
        ("abcdefgh", [CLASSES]),
        ("abcdefg1", [CLASSES]),
        ("ABCDEFG1", [CLASSES]),
        ("12345678-", [CLASSES]),
        ("Ab-13800138000", [HAS_PHONE]),
        ("13800138000", [CLASSES, HAS_PHONE]),
        ("a1", [SHORT, CLASSES]),
    ],
)
def test_policy_errors_name_every_broken_rule(password, errors):
    assert policy_errors(password, phone=PHONE, old_hash=None) == errors


def test_the_old_password_is_refused():
    old_hash = hash_password("Initial-Pass-1")

    assert policy_errors("Initial-Pass-1", phone=PHONE, old_hash=old_hash) == [SAME]
    assert policy_errors("Initial-Pass-2", phone=PHONE, old_hash=old_hash) == []


def test_without_a_phone_the_phone_rule_does_not_apply():
    assert policy_errors("Ab-13800138000", phone="", old_hash=None) == []


def test_hashes_are_argon2id_with_owasps_minimum_by_default():
    stored = hash_password("Initial-Pass-1")

    assert re.match(r"^\$argon2id\$v=19\$m=19456,t=2,p=1\$", stored)
    assert verify_password(stored, "Initial-Pass-1")
    assert not verify_password(stored, "Initial-Pass-2")
    assert hash_password("Initial-Pass-1") != stored  # salted


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "$argon2id$v=19$broken"])
def test_verify_refuses_missing_or_broken_hashes(stored):
    assert verify_password(stored, "Initial-Pass-1") is False


def test_generated_initial_passwords_always_satisfy_the_policy():
    passwords = {generate_initial_password() for _ in range(2000)}

    assert len(passwords) == 2000
    for password in passwords:
        assert len(password) == 10
        assert password.isascii() and password.isalnum()  # easy to type from an SMS
        assert not set(password) & set("lI1O0o")  # nothing to confuse when reading it
        assert policy_errors(password, phone=PHONE, old_hash=None) == []


def test_the_settings_choose_the_parameters_and_older_hashes_need_rehashing(app):
    before = hash_password("Initial-Pass-1")
    app.extensions["idp"] = replace(
        app.extensions["idp"], password_time_cost=3, password_memory_kib=8192
    )

    after = hash_password("Initial-Pass-1")

    assert re.match(r"^\$argon2id\$v=19\$m=8192,t=3,p=1\$", after)
    assert needs_rehash(before)
    assert not needs_rehash(after)
    assert verify_password(before, "Initial-Pass-1")  # still accepted until the login rehashes


def test_concurrent_verifications_hash_one_at_a_time(monkeypatch):
    """A threaded worker's logins take turns at the hash: its peak memory holds one hash's
    IDP_PASSWORD_MEMORY_KIB, not one per thread."""
    stored = hash_password("Abcdefg-1")
    running, peak, guard = 0, 0, threading.Lock()
    original = PasswordHasher.verify

    def counting_verify(self, password_hash, password):
        nonlocal running, peak
        with guard:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.02)  # long enough for the other threads to arrive meanwhile
            return original(self, password_hash, password)
        finally:
            with guard:
                running -= 1

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    attempts = ["Abcdefg-1", "wrong-Pass1"] * 4
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        results = list(pool.map(lambda password: verify_password(stored, password), attempts))

    assert results == [True, False] * 4
    assert peak == 1
