"""Platform admin accounts: add, remove, list; password + TOTP login with the operators'
lockout counting, TOTP enrolment with one-time recovery codes, and refusal of a TOTP code
that was already used (docs/admin.md)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta

import pyotp
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit
from idp.admin.models import PlatformAdmin
from idp.auth.errors import AccountLockedError, LoginFailedError
from idp.auth.passwords import (
    hash_password,
    joined,
    needs_rehash,
    policy_errors,
    verify_password,
)
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError, NotFoundError
from idp.store import store

USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,63}")
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "统一认证登录平台"
TOTP_WINDOW = 1  # one 30-second step either side: clocks of phones drift
TOTP_STEP = 30


class AdminError(IdpError):
    code = "invalid_admin"
    status = 400


class AdminLoginFailedError(LoginFailedError):
    code = "admin_login_failed"
    message = _l("用户名或密码错误")


class TotpCodeError(LoginFailedError):
    code = "totp_invalid"
    message = _l("动态验证码错误或已使用")
    field = "code"


def normalise_username(username: str) -> str:
    return username.strip().lower()


def add_admin(session: Session, *, username: str, password: str, actor: str) -> PlatformAdmin:
    """A new platform admin with ``password`` (the project's password policy); TOTP is set up at
    the first login."""
    username = normalise_username(username)
    if not USERNAME.fullmatch(username):
        raise AdminError(
            _l("用户名须为 3-64 位小写字母、数字或 . _ -，以字母开头"), field="username"
        )
    if find_admin(session, username) is not None:
        raise AdminError(_l("该用户名已存在"), field="username")
    errors = policy_errors(password, phone="", old_hash=None)
    if username in password.lower():
        errors.append(str(_l("密码不能包含用户名")))
    if errors:
        raise AdminError(joined(errors), field="password")
    admin = PlatformAdmin(username=username, password_hash=hash_password(password))
    session.add(admin)
    session.flush()
    audit.record("admin.account_added", actor=actor, target=f"platform_admin:{username}")
    return admin


def remove_admin(session: Session, *, username: str, actor: str) -> None:
    admin = find_admin(session, normalise_username(username))
    if admin is None:
        raise NotFoundError(_l("没有该平台管理员"))
    session.delete(admin)
    audit.record("admin.account_removed", actor=actor, target=f"platform_admin:{admin.username}")


def list_admins(session: Session) -> list[PlatformAdmin]:
    return list(session.scalars(select(PlatformAdmin).order_by(PlatformAdmin.username)))


def find_admin(session: Session, username: str) -> PlatformAdmin | None:
    return session.scalars(select(PlatformAdmin).where(PlatformAdmin.username == username)).first()


# --- login ----------------------------------------------------------------------------------------


def _attempts_key(username: str) -> str:
    return f"admin:attempts:{username}"


def _count_attempt(username: str, *, field: str) -> None:
    """Count before checking (as operators' logins do), so parallel guesses cannot exceed the
    threshold. Passwords and TOTP codes share the count: both are guesses at the account."""
    window = timedelta(seconds=settings().lockout_seconds)
    if store().incr(_attempts_key(username), window) > settings().lockout_threshold:
        raise AccountLockedError(field=field)


def check_password(session: Session, *, username: str, password: str) -> PlatformAdmin:
    """The first factor; raises ``AdminLoginFailedError`` (or ``AccountLockedError``)."""
    username = normalise_username(username)
    try:
        _count_attempt(username, field="password")
        admin = find_admin(session, username)
        if not verify_password(admin.password_hash if admin else None, password) or admin is None:
            raise AdminLoginFailedError()
    except LoginFailedError as error:
        audit.record("admin.login_failed", actor=f"platform_admin:{username}", result=error.code)
        raise
    if needs_rehash(admin.password_hash):
        admin.password_hash = hash_password(password)
    return admin


def _matching_counter(secret: str, code: str) -> int | None:
    """The time step whose code ``code`` is, within the allowed drift; None if none is."""
    totp = pyotp.TOTP(secret, interval=TOTP_STEP)
    now = int(utcnow().timestamp()) // TOTP_STEP
    for counter in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(counter), code):
            return counter
    return None


def _take_totp(admin: PlatformAdmin, code: str) -> bool:
    """True once per (admin, time step): a code seen before is refused, even a right one."""
    code = code.strip().replace(" ", "")
    if admin.totp_secret is None or not re.fullmatch(r"\d{6}", code):
        return False
    counter = _matching_counter(admin.totp_secret, code)
    if counter is None:
        return False
    ttl = timedelta(seconds=TOTP_STEP * (2 * TOTP_WINDOW + 2))
    return store().add(f"admin:totp:used:{admin.id}:{counter}", b"1", ttl)


def _recovery_digest(code: str) -> str:
    """Recovery codes carry 80 random bits, so a plain SHA-256 keeps them as safe as a slow
    password hash would, and checking ten of them costs nothing."""
    normalised = code.strip().replace(" ", "").replace("-", "").lower()
    return hashlib.sha256(normalised.encode()).hexdigest()


def _take_recovery_code(admin: PlatformAdmin, code: str) -> bool:
    wanted = _recovery_digest(code)
    for hashed in admin.recovery_codes:
        if secrets.compare_digest(hashed, wanted):
            admin.recovery_codes = [h for h in admin.recovery_codes if h != hashed]
            return True
    return False


def check_second_factor(admin: PlatformAdmin, code: str, *, allow_recovery: bool) -> str:
    """The TOTP code (or, at login, an unused recovery code); returns the amr value used."""
    try:
        _count_attempt(admin.username, field="code")
        if admin.totp_confirmed and _take_totp(admin, code):
            method = "otp"
        elif allow_recovery and admin.totp_confirmed and _take_recovery_code(admin, code):
            method = "recovery"
        else:
            raise TotpCodeError()
    except LoginFailedError as error:
        audit.record(
            "admin.totp_failed", actor=f"platform_admin:{admin.username}", result=error.code
        )
        raise
    return method


def logged_in(admin: PlatformAdmin, method: str) -> None:
    store().delete(_attempts_key(admin.username))
    admin.last_login_at = utcnow()
    audit.record(
        "admin.login_succeeded",
        actor=f"platform_admin:{admin.username}",
        details={"method": method},
    )


# --- TOTP enrolment -------------------------------------------------------------------------------


def enrolment_secret(admin: PlatformAdmin) -> str:
    """The secret being enrolled: made once, kept until confirmed (a reload shows the same)."""
    if admin.totp_confirmed:
        raise AdminError(_l("动态验证码已绑定"))
    if admin.totp_secret is None:
        admin.totp_secret = pyotp.random_base32()
    return admin.totp_secret


def provisioning_uri(admin: PlatformAdmin) -> str:
    return pyotp.TOTP(enrolment_secret(admin)).provisioning_uri(
        name=admin.username, issuer_name=TOTP_ISSUER
    )


def confirm_enrolment(admin: PlatformAdmin, code: str) -> list[str]:
    """Confirm the authenticator with one of its codes; returns the recovery codes (shown once,
    stored hashed)."""
    enrolment_secret(admin)
    try:
        _count_attempt(admin.username, field="code")
        admin.totp_confirmed = True  # _take_totp trusts confirmed secrets only
        if not _take_totp(admin, code):
            admin.totp_confirmed = False
            raise TotpCodeError()
    except LoginFailedError as error:
        audit.record(
            "admin.totp_failed", actor=f"platform_admin:{admin.username}", result=error.code
        )
        raise
    audit.record("admin.totp_enrolled", actor=f"platform_admin:{admin.username}")
    return new_recovery_codes(admin)


def _new_recovery_code() -> str:
    """80 random bits as four groups of four base32 characters (xxxx-xxxx-xxxx-xxxx)."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def new_recovery_codes(admin: PlatformAdmin) -> list[str]:
    """Ten fresh recovery codes; the earlier ones stop working."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    admin.recovery_codes = [_recovery_digest(code) for code in codes]
    audit.record("admin.recovery_codes_issued", actor=f"platform_admin:{admin.username}")
    return codes
