"""Operator authentication: phone + password + SMS code, lockout, forced password change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from idp import audit, db
from idp.auth import sms_codes
from idp.auth.client import Client
from idp.auth.credentials import credentials_changed
from idp.auth.errors import (
    AccountDeletedError,
    AccountLockedError,
    AccountUnusableError,
    LoginFailedError,
    OrgSuspendedError,
    TooManyLoginAttemptsError,
    WrongCurrentPasswordError,
)
from idp.auth.passwords import (
    hash_password,
    joined,
    needs_rehash,
    policy_errors,
    verify_password,
)
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError
from idp.identity.eligibility import has_active_membership, only_suspended_orgs
from idp.identity.lookup import find_account_by_phone
from idp.identity.models import Account, MembershipStatus
from idp.security import mask_phone
from idp.sms import SmsError, gateway
from idp.sms.messages import render_message
from idp.store import store

LOGIN_PURPOSE = "login"
PASSWORD_CHANGED_PURPOSE = "password_changed"  # noqa: S105  (an SMS purpose)
OPERATOR_AMR = ["pwd", "sms", "mfa"]  # RFC 8176: password + SMS one-time code
OPERATOR_ACR = "urn:idp:acr:operator"


class PasswordPolicyError(IdpError):
    code = "password_policy"

    def __init__(self, errors: list[str]) -> None:
        super().__init__(joined(errors))
        self.errors = errors


def request_login_code(*, phone: str, client: Client) -> None:
    """Queue a login code for ``phone``. Whether it goes out (only to a usable account) is the
    worker's decision: this request does the same for every phone and answers alike."""
    sms_codes.send_code(phone, purpose=LOGIN_PURPOSE, client=client, only_to_account=True)
    audit.record("auth.sms_code_requested", actor=mask_phone(phone))


def attempts_key(phone: str) -> str:
    return f"login:attempts:{phone}"


def _count_attempt(phone: str, *, field: str = "password") -> None:
    """Count a password attempt before checking it, so parallel guesses cannot exceed the
    threshold: the (threshold+1)-th attempt in the window is refused unchecked.

    Every check of the password counts, at the login and on a logged-in session's password
    change alike: one lockout per phone. At the login it is called only once the SMS code is
    right: wrong codes have their own limit (5 tries, then a new code), and counting them here
    would let anyone who knows a phone number lock its account, and would make
    "验证码错误次数过多" unreachable behind the lockout."""
    window = timedelta(seconds=settings().lockout_seconds)
    if store().incr(attempts_key(phone), window) > settings().lockout_threshold:
        remaining = store().ttl(attempts_key(phone)) or window
        raise AccountLockedError.until(utcnow() + remaining, field=field)


def count_network_attempt(phone: str, client: Client) -> None:
    """Count a login attempt of this network across phones, before anything is checked, so one
    network cannot try codes and passwords on many phones. A browser that has logged in as
    ``phone`` before is exempt: a busy shared address (carrier NAT) does not stop the owner."""
    if sms_codes.is_known_browser(phone, client):
        return
    window = timedelta(seconds=settings().lockout_seconds)
    if store().incr(f"login:ip:{client.network}", window) > settings().login_ip_limit:
        raise TooManyLoginAttemptsError()


def authenticate_operator(
    session: Session, *, phone: str, password: str, sms_code: str, client: Client
) -> Account:
    """Check phone, password and SMS code; raise a ``LoginFailedError`` subclass otherwise.
    A failure past the SMS code names the account it was for, so its owner sees it among
    their recent sign-ins (/account)."""
    account: Account | None = None
    try:
        count_network_attempt(phone, client)
        sms_codes.check_code(phone, purpose=LOGIN_PURPOSE, code=sms_code, client=client)
        _count_attempt(phone)
        account = find_account_by_phone(session, phone)
        if (
            not verify_password(account.password_hash if account else None, password)
            or account is None
        ):
            raise LoginFailedError()
        store().delete(attempts_key(phone))
        check_usable(session, account)
        sms_codes.consume_code(phone, purpose=LOGIN_PURPOSE, client=client)
    except LoginFailedError as error:
        audit.record(
            "auth.login_failed",
            actor=mask_phone(phone),
            target=f"account:{account.id}" if account is not None else "",
            result=error.code,
        )
        raise
    sms_codes.remember_browser(phone, client)
    if needs_rehash(account.password_hash):
        rehash_unless_changed(account, password)
    account.last_login_at = utcnow()
    audit.record("auth.login_succeeded", actor=mask_phone(phone), target=f"account:{account.id}")
    return account


def check_usable(session: Session, account: Account) -> None:
    """Say why an account cannot log in, to the person who proved its phone and password:
    停用 while an organisation only disabled it (its admin can enable it again), 删除 when
    every membership was deleted, 暂停使用 when the platform suspended every organisation the
    person is an active operator of."""
    if has_active_membership(session, account.id):
        return
    if only_suspended_orgs(session, account.id):
        raise OrgSuspendedError()
    statuses = {membership.status for membership in account.memberships}
    if MembershipStatus.DISABLED in statuses:
        raise AccountUnusableError()
    raise AccountDeletedError()


def change_password(session: Session, account: Account, *, current: str, new: str) -> int:
    """Change the password after checking the current one and the policy; every other login
    session and every token of the account end with the old password. Returns the account's
    new credential version, for the session that made the change to keep."""
    check_current_password(account, current)
    errors = policy_errors(new, phone=account.phone, old_hash=account.password_hash)
    if errors:
        raise PasswordPolicyError(errors)
    account.password_hash = hash_password(new)
    account.must_change_password = False
    account.password_changed_at = utcnow()
    version, revoked = credentials_changed(session, account)
    audit.record(
        "auth.password_changed",
        actor=mask_phone(account.phone),
        target=f"account:{account.id}",
        details={"tokens_revoked": str(revoked)},
    )
    return version


def notify_password_changed(account: Account) -> None:
    """Tell the phone that the password changed, so a change the person did not make is
    noticed. Sent after the change is committed; a gateway failure is audited and does not
    undo the change (the person must not be locked out by an SMS outage)."""
    try:
        gateway().send(render_message(phone=account.phone, purpose=PASSWORD_CHANGED_PURPOSE))
    except SmsError as error:
        result = error.code
    else:
        result = "success"
    audit.record(
        "auth.password_change_notice_sent",
        actor="system",
        target=mask_phone(account.phone),
        result=result,
    )


def check_current_password(account: Account, password: str) -> None:
    """A logged-in session proving the current password: counted toward the account's lockout
    like a login, so a session cannot guess the password without limit."""
    try:
        _count_attempt(account.phone, field="current_password")
        if not verify_password(account.password_hash, password):
            raise WrongCurrentPasswordError()
    except LoginFailedError as error:
        audit.record(
            "auth.password_change_failed", actor=mask_phone(account.phone), result=error.code
        )
        raise
    store().delete(attempts_key(account.phone))


def rehash_unless_changed(account: Account, password: str) -> None:
    """Store the verified password under the current hash parameters, only while the stored
    hash is still the one it was verified against: a password change that commits while this
    login is in flight must not be overwritten with the old password. A transaction of its own,
    so the request holds no write lock when it then writes its session to the store."""
    with db.engine().begin() as conn:
        conn.execute(
            update(Account)
            .where(Account.id == account.id, Account.password_hash == account.password_hash)
            .values(password_hash=hash_password(password))
        )
