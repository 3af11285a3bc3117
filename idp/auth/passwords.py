"""Argon2id password hashing and the password policy (docs/design.md §6)."""

from __future__ import annotations

import os
import secrets
import string
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import has_app_context
from flask_babel import gettext as _

from idp.config import settings

DEFAULT_PARAMETERS = (2, 19 * 1024, 1)  # OWASP's argon2id minimum, as IDP_PASSWORD_*
MIN_LENGTH = 8
MAX_LENGTH = 128

# Every hash of the process runs on this one thread, one at a time. Each takes
# IDP_PASSWORD_MEMORY_KIB while it runs, and glibc keeps that block in the allocating thread's
# arena afterwards: hashing on each of a threaded worker's threads would keep a block per thread
# (measured: 4 threads, 89 MiB instead of 32). On a shared core the hashes take turns anyway.
_hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")


def _new_hashing_thread() -> None:
    """A forked child has the executor but not its thread: give it its own."""
    global _hashing
    _hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")


os.register_at_fork(after_in_child=_new_hashing_thread)


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> tuple[PasswordHasher, str]:
    """The argon2id hasher at these parameters and a hash of a random secret made with it,
    verified against when the account does not exist, so both paths cost the same time."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    return hasher, _hashing.submit(hasher.hash, secrets.token_urlsafe(16)).result()


def current_hasher() -> tuple[PasswordHasher, str]:
    """The hasher at the app's IDP_PASSWORD_* parameters (the defaults outside an app)."""
    if not has_app_context():
        return _hasher(*DEFAULT_PARAMETERS)
    config = settings()
    return _hasher(
        config.password_time_cost, config.password_memory_kib, config.password_parallelism
    )


def hash_password(password: str) -> str:
    return _hashing.submit(current_hasher()[0].hash, password).result()


def verify_password(password_hash: str | None, password: str) -> bool:
    hasher, dummy_hash = current_hasher()
    try:
        verified = _hashing.submit(hasher.verify, password_hash or dummy_hash, password).result()
    except (VerificationError, InvalidHashError):
        return False
    return verified and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True for a hash made at other parameters: the login stores a new one."""
    return current_hasher()[0].check_needs_rehash(password_hash)


def character_classes(password: str) -> int:
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    count = sum(any(c in group for c in password) for group in classes)
    return count + any(not c.isalnum() or not c.isascii() for c in password)


def policy_errors(password: str, *, phone: str, old_hash: str | None) -> list[str]:
    """Why ``password`` is not acceptable (empty when it is): at least 8 characters, 3 of the
    4 character classes, not containing the phone number, not equal to the old password."""
    errors = []
    if len(password) < MIN_LENGTH:
        errors.append(_("密码至少 %(n)d 位", n=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        errors.append(_("密码最多 %(n)d 位", n=MAX_LENGTH))
    if character_classes(password) < 3:
        errors.append(_("密码须包含大写字母、小写字母、数字、符号中的至少三类"))
    if phone and phone in password:
        errors.append(_("密码不能包含手机号"))
    if old_hash and verify_password(old_hash, password):
        errors.append(_("新密码不能与原密码相同"))
    return errors


def joined(errors: list[str]) -> str:
    """Several policy errors as one sentence (the separator follows the language)."""
    return _("；").join(errors)


# Read off an SMS and typed in by hand: no characters that are easily confused.
LOOK_ALIKE = frozenset("lI1O0o")


def generate_initial_password() -> str:
    """A random password that satisfies the policy (sent by SMS; must be changed at first login)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in LOOK_ALIKE)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(10))
        if character_classes(candidate) >= 3:
            return candidate
