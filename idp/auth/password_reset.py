"""忘记密码: a person who lost the password sets a new one by proving the phone (SMS code) and
the name on record, which the carrier confirms still holds the phone (手机二要素), so a phone
number passed on to someone else does not open the account.

Strangers learn nothing: the code goes out only to a phone with an account (decided by the
SMS worker, the request answers alike), so without the code every phone looks the same. The
limits are the login's: the network's attempts across phones, the code's 5 tries, and a wrong
name uses the code up, so each further guess costs a new SMS under the SMS limits.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from idp import audit
from idp.auth import sms_codes, sms_delivery
from idp.auth.client import Client
from idp.auth.credentials import credentials_changed
from idp.auth.errors import SmsCodeError
from idp.auth.passwords import hash_password, policy_errors
from idp.auth.service import (
    PASSWORD_CHANGED_PURPOSE,
    PasswordPolicyError,
    attempts_key,
    count_network_attempt,
)
from idp.auth.sms_delivery import Delivery
from idp.db import utcnow
from idp.errors import IdpError
from idp.identity.lookup import find_account_by_phone
from idp.identity.models import Account
from idp.realname import Verdict, verifier
from idp.security import mask_phone
from idp.store import store

RESET_PURPOSE = "password_reset"  # an SMS purpose


class ResetNameMismatchError(IdpError):
    """The name typed is not the one on record, or the carrier says it does not hold the phone."""

    code = "reset_name_mismatch"
    status = 400
    message = _l("姓名与该手机号的登记信息不符，请重新获取验证码后再试")
    field = "name"


def request_reset_code(*, phone: str, client: Client) -> None:
    """Queue a reset code for ``phone``; sent only if the phone has an account (worker)."""
    sms_codes.send_code(phone, purpose=RESET_PURPOSE, client=client, only_to_account=True)
    audit.record("auth.password_reset_code_requested", actor=mask_phone(phone))


def reset_password(
    session: Session, *, phone: str, sms_code: str, name: str, new: str, client: Client
) -> Account:
    """Check the code, the policy and the name, then set the new password: every login
    session and token of the person ends (``credentials_changed``) and the phone is told once
    the change is committed. Raises ``IdpError`` with its field. The caller commits, then calls
    ``lift_lock``: the SQL store may share the database, whose write lock the change holds."""
    try:
        count_network_attempt(phone, client)
        sms_codes.check_code(phone, purpose=RESET_PURPOSE, code=sms_code, client=client)
        account = find_account_by_phone(session, phone)
        if account is None:  # no code was sent to it: answer as for any code that is not live
            raise SmsCodeError()
        errors = policy_errors(new, phone=phone, old_hash=account.password_hash)
        if errors:
            raise PasswordPolicyError(errors)
        check_name(account, name, client)
        sms_codes.consume_code(phone, purpose=RESET_PURPOSE, client=client)
    except IdpError as error:
        audit.record("auth.password_reset_failed", actor=mask_phone(phone), result=error.code)
        raise
    account.password_hash = hash_password(new)
    account.must_change_password = False
    account.password_changed_at = utcnow()
    version, revoked = credentials_changed(session, account)
    audit.record(
        "auth.password_reset",
        actor=mask_phone(phone),
        target=f"account:{account.id}",
        details={"tokens_revoked": str(revoked), "credential_version": str(version)},
    )
    sms_delivery.enqueue_after_commit(
        Delivery(phone=phone, purpose=PASSWORD_CHANGED_PURPOSE, params={})
    )
    return account


def lift_lock(phone: str) -> None:
    """The new password ends the lockout of the old one (after the commit)."""
    store().delete(attempts_key(phone))


def check_name(account: Account, name: str, client: Client) -> None:
    """The name on record, typed by the person and confirmed by the carrier for the phone. A
    mismatch uses the code up; no verdict (503) keeps it for a retry."""
    matches = "".join(name.split()) == "".join(account.name.split())
    if matches and verifier().verify(name=account.name, phone=account.phone) == Verdict.MATCH:
        return
    sms_codes.consume_code(account.phone, purpose=RESET_PURPOSE, client=client)
    raise ResetNameMismatchError()
