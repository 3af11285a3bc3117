"""Argon2id password hashing and the password policy (docs/design.md §6)."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile
# Verified against when the account does not exist, so both paths cost the same time.
DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
MIN_LENGTH = 8
MAX_LENGTH = 128


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


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


# Read off an SMS and typed in by hand: no characters that are easily confused.
LOOK_ALIKE = frozenset("lI1O0o")


def generate_initial_password() -> str:
    """A random password that satisfies the policy (sent by SMS; must be changed at first login)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in LOOK_ALIKE)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(10))
        if character_classes(candidate) >= 3:
            return candidate
