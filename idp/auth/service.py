"""Operator authentication: phone + password + SMS code, lockout, forced password change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit
from idp.auth import sms_codes
from idp.auth.client import Client
from idp.auth.errors import (
    AccountLockedError,
    AccountUnusableError,
    LoginFailedError,
    TooManyLoginAttemptsError,
    WrongCurrentPasswordError,
)
from idp.auth.passwords import hash_password, needs_rehash, policy_errors, verify_password
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError
from idp.identity.models import Account, Membership, MembershipStatus
from idp.security import mask_phone
from idp.store import store

LOGIN_PURPOSE = "login"
OPERATOR_AMR = ["pwd", "sms", "mfa"]  # RFC 8176: password + SMS one-time code
OPERATOR_ACR = "urn:idp:acr:operator"


class PasswordPolicyError(IdpError):
    code = "password_policy"

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def find_account(session: Session, phone: str) -> Account | None:
    return session.scalar(select(Account).where(Account.phone == phone))


def active_memberships(session: Session, account: Account) -> list[Membership]:
    return list(
        session.scalars(
            select(Membership).where(
                Membership.account_id == account.id, Membership.status == MembershipStatus.ACTIVE
            )
        )
    )


def request_login_code(*, phone: str, client: Client) -> None:
    """Queue a login code for ``phone``. Whether it goes out (only to a usable account) is the
    worker's decision: this request does the same for every phone and answers alike."""
    sms_codes.send_code(phone, purpose=LOGIN_PURPOSE, client=client, only_to_account=True)
    audit.record("auth.sms_code_requested", actor=mask_phone(phone))


def _count_attempt(phone: str) -> None:
    """Count a password attempt before checking it, so parallel guesses cannot exceed the
    threshold: the (threshold+1)-th attempt in the window is refused unchecked.

    Called only once the SMS code is right: wrong codes have their own limit (5 tries, then a
    new code), and counting them here would let anyone who knows a phone number lock its
    account, and would make "验证码错误次数过多" unreachable behind the lockout."""
    window = timedelta(seconds=settings().lockout_seconds)
    if store().incr(f"login:attempts:{phone}", window) > settings().lockout_threshold:
        raise AccountLockedError()


def _count_network_attempt(phone: str, client: Client) -> None:
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
    """Check phone, password and SMS code; raise a ``LoginFailedError`` subclass otherwise."""
    try:
        _count_network_attempt(phone, client)
        sms_codes.check_code(phone, purpose=LOGIN_PURPOSE, code=sms_code, client=client)
        _count_attempt(phone)
        account = find_account(session, phone)
        if (
            not verify_password(account.password_hash if account else None, password)
            or account is None
        ):
            raise LoginFailedError()
        if not active_memberships(session, account):
            raise AccountUnusableError()
        sms_codes.consume_code(phone, purpose=LOGIN_PURPOSE, client=client)
    except LoginFailedError as error:
        audit.record("auth.login_failed", actor=mask_phone(phone), result=error.code)
        raise
    store().delete(f"login:attempts:{phone}")
    sms_codes.remember_browser(phone, client)
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = utcnow()
    audit.record("auth.login_succeeded", actor=mask_phone(phone), target=f"account:{account.id}")
    return account


def change_password(session: Session, account: Account, *, current: str, new: str) -> None:
    """Change the password after checking the current one and the policy."""
    if not verify_password(account.password_hash, current):
        audit.record(
            "auth.password_change_failed", actor=mask_phone(account.phone), result="wrong_password"
        )
        raise WrongCurrentPasswordError()
    errors = policy_errors(new, phone=account.phone, old_hash=account.password_hash)
    if errors:
        raise PasswordPolicyError(errors)
    account.password_hash = hash_password(new)
    account.must_change_password = False
    account.password_changed_at = utcnow()
    audit.record(
        "auth.password_changed", actor=mask_phone(account.phone), target=f"account:{account.id}"
    )
