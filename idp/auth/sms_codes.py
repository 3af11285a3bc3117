"""One-time SMS codes: 6 digits, 5 minutes, single use, stored as an HMAC, at most 5 tries;
sends limited per phone (1 per 60 s, 10 per day) and per client IP (docs/design.md §6)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import timedelta

from idp.auth.errors import SmsCodeError, SmsCodeTriesExceededError, SmsRateLimitedError
from idp.config import settings
from idp.db import utcnow
from idp.sms import SmsError, gateway
from idp.sms.messages import render_message
from idp.store import store

CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
RESEND_INTERVAL = timedelta(seconds=60)
DAILY_LIMIT = 10


def _code_key(phone: str, purpose: str) -> str:
    return f"sms:code:{purpose}:{phone}"


def _code_digest(phone: str, purpose: str, code: str) -> str:
    key = settings().secret_key.encode()
    return hmac.new(key, f"{purpose}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def check_send_limits(phone: str, ip: str) -> None:
    """Reserve this send against the limits or raise ``SmsRateLimitedError``.

    The per-phone interval is taken atomically (``add``) so parallel requests send one code.
    The daily count is only ever ``incr``-ed (the SQL store's ``get`` of a counter is empty) and
    is taken once the interval is, so refused clicks do not use up the day; it counts phones
    without an account too, so the daily limit does not tell them apart."""
    day = utcnow().strftime("%Y%m%d")
    if store().incr(f"sms:ip:{ip}", timedelta(hours=1)) > settings().sms_ip_hourly_limit:
        raise SmsRateLimitedError(retry_after=3600)
    if not store().add(f"sms:interval:{phone}", b"1", RESEND_INTERVAL):
        remaining = store().ttl(f"sms:interval:{phone}") or RESEND_INTERVAL
        raise SmsRateLimitedError(retry_after=max(int(remaining.total_seconds()), 1))
    if store().incr(f"sms:day:{phone}:{day}", timedelta(days=1)) > DAILY_LIMIT:
        raise SmsRateLimitedError(retry_after=86400)


def send_code(phone: str, *, purpose: str, ip: str, deliver: bool) -> None:
    """Issue and send a code. ``deliver`` is False for phones without an account: the limits
    and the answer are the same, so the request reveals nothing; only no SMS goes out."""
    check_send_limits(phone, ip)
    if not deliver:
        return
    code = f"{secrets.randbelow(10**6):06d}"
    record = {"digest": _code_digest(phone, purpose, code)}
    store().put(_code_key(phone, purpose), json.dumps(record).encode(), CODE_TTL)
    store().delete(f"sms:tries:{purpose}:{phone}")
    try:
        gateway().send(render_message(phone=phone, purpose=purpose, code=code))
    except SmsError:
        # Nothing was delivered: withdraw the code and give the interval back (the day's
        # count stays taken: it also bounds retries against a failing gateway).
        store().delete(_code_key(phone, purpose))
        store().delete(f"sms:interval:{phone}")
        raise


def check_code(phone: str, *, purpose: str, code: str) -> None:
    """Raise unless ``code`` is the live code for ``phone``; counts the try. Does not consume:
    call ``consume_code`` once the rest of the login has succeeded."""
    tries = store().incr(f"sms:tries:{purpose}:{phone}", CODE_TTL)
    raw = store().get(_code_key(phone, purpose))
    if tries > MAX_TRIES:
        store().delete(_code_key(phone, purpose))
        raise SmsCodeTriesExceededError()
    if raw is None:
        raise SmsCodeError()
    expected = json.loads(raw)["digest"]
    if not hmac.compare_digest(expected, _code_digest(phone, purpose, code)):
        raise SmsCodeError()


def consume_code(phone: str, *, purpose: str) -> None:
    """Use the code up; of two parallel logins with the same code only one gets past here."""
    if store().consume(_code_key(phone, purpose)) is None:
        raise SmsCodeError()
    store().delete(f"sms:tries:{purpose}:{phone}")
