"""One-time SMS codes: 6 digits, 5 minutes, single use, stored as an HMAC, at most 5 tries
(docs/design.md §6), with limits that someone who knows only a phone number cannot spend to
lock its owner out (docs/threat-model.md, "SMS abuse").

A code belongs to the phone *and the browser that asked for it*: only that browser can redeem
it or use up its tries, so a stranger's wrong guesses and a stranger's requests for the same
phone never touch the owner's code. Sending is limited per (phone, browser) and per (phone,
network), each with the 60 s interval and 10 a day; per network (hourly); per phone across all
clients (daily) and in total (hourly). A browser that has logged in as the phone before is
limited by its own counters only, so nothing a stranger does elsewhere can stop it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from idp import db, jsoncodec
from idp.auth import sms_delivery
from idp.auth.client import Client
from idp.auth.errors import SmsCodeError, SmsCodeTriesExceededError, SmsRateLimitedError
from idp.auth.sms_delivery import Delivery, Withdrawal
from idp.config import settings
from idp.db import utcnow
from idp.sms import SmsError
from idp.store import store
from idp.store.interface import Count

CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
RESEND_INTERVAL = timedelta(seconds=60)
DAILY_LIMIT = 10  # per (phone, browser) and per (phone, network)
KNOWN_BROWSER_TTL = timedelta(days=90)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def code_key(phone: str, purpose: str, client: Client) -> str:
    return f"sms:code:{purpose}:{phone}:{client.browser}"


def tries_key(phone: str, purpose: str, client: Client) -> str:
    return f"sms:tries:{purpose}:{phone}:{client.browser}"


def known_browser_key(phone: str, client: Client) -> str:
    return f"sms:known:{phone}:{client.browser}"


def _code_digest(phone: str, purpose: str, code: str) -> str:
    key = settings().secret_key.encode()
    return hmac.new(key, f"{purpose}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def remember_browser(phone: str, client: Client) -> None:
    """After a login: this browser is the phone's owner's, exempt from the shared limits."""
    store().put(known_browser_key(phone, client), b"1", KNOWN_BROWSER_TTL)


def is_known_browser(phone: str, client: Client) -> bool:
    return store().get(known_browser_key(phone, client)) is not None


@dataclass(frozen=True)
class Limits:
    """What one send is checked against: ``clicks`` count every request, ``intervals`` are the
    resend intervals, ``sends`` count the requests that got past the intervals."""

    clicks: list[Count]
    intervals: list[str]
    sends: list[Count]

    @classmethod
    def for_send(cls, phone: str, client: Client, *, known: bool) -> Limits:
        own = cls(
            clicks=[],
            intervals=[f"sms:interval:{phone}:b:{client.browser}"],
            sends=[Count(f"sms:day:{phone}:b:{client.browser}:{_day()}", DAILY_LIMIT, DAY)],
        )
        if known:
            return own
        return cls(
            clicks=[Count(f"sms:ip:{client.network}", settings().sms_ip_hourly_limit, HOUR)],
            intervals=[*own.intervals, f"sms:interval:{phone}:n:{client.network}"],
            sends=[
                *own.sends,
                Count(f"sms:day:{phone}:n:{client.network}:{_day()}", DAILY_LIMIT, DAY),
                Count(f"sms:day:{phone}:{_day()}", settings().sms_phone_daily_limit, DAY),
                Count(f"sms:all:{_hour()}", settings().sms_global_hourly_limit, HOUR),
            ],
        )


def _day() -> str:
    return utcnow().strftime("%Y%m%d")


def _hour() -> str:
    return utcnow().strftime("%Y%m%d%H")


def check_send_limits(phone: str, client: Client) -> Limits:
    """Reserve this send against the limits or raise ``SmsRateLimitedError``.

    The network's hourly count takes every click; the intervals are taken atomically (``add``)
    so parallel requests send one code; only then are the daily and total counts taken, so
    refused clicks use up neither the day nor the shared budget. Phones without an account
    are counted alike, so the limits do not tell them apart."""
    limits = Limits.for_send(phone, client, known=is_known_browser(phone, client))
    take_counts(limits.clicks)
    take_intervals(limits.intervals)
    take_counts(limits.sends)
    return limits


def take_counts(counts: list[Count]) -> None:
    over = store().take(counts)
    if over is not None:
        raise SmsRateLimitedError(retry_after=int(over.window.total_seconds()))


def take_intervals(keys: list[str]) -> None:
    """Take every resend interval or none: one that is running refuses the send, and the
    intervals this call had already taken are given back."""
    taken: list[str] = []
    for key in keys:
        if not store().add(key, b"1", RESEND_INTERVAL):
            release(taken)
            remaining = store().ttl(key) or RESEND_INTERVAL
            raise SmsRateLimitedError(retry_after=max(int(remaining.total_seconds()), 1))
        taken.append(key)


def release(keys: list[str]) -> None:
    for key in keys:
        store().delete(key)


def send_code(phone: str, *, purpose: str, client: Client, only_to_account: bool) -> None:
    """Reserve the limits, issue a code and queue its SMS; the vendor is not waited for.

    With ``only_to_account`` (login codes) the worker sends the SMS only if the phone has a
    usable account, and withdraws the code otherwise: the request does the same work for every
    phone, so neither its answer nor its time tells them apart. If the delivery fails, the
    worker withdraws the code and gives the intervals back (the day's counts stay taken: they
    also bound retries against a failing gateway)."""
    db.ensure_reachable()  # the request's audit event must be writable before a code exists
    limits = check_send_limits(phone, client)
    code = f"{secrets.randbelow(10**6):06d}"
    digest = _code_digest(phone, purpose, code)
    key = code_key(phone, purpose, client)
    store().put(key, jsoncodec.dumpb({"digest": digest}), CODE_TTL)
    store().delete(tries_key(phone, purpose, client))
    delivery = Delivery(
        phone=phone,
        purpose=purpose,
        params={"code": code},
        only_to_account=only_to_account,
        withdrawal=Withdrawal(code_key=key, digest=digest, intervals=limits.intervals),
        not_after=(utcnow() + CODE_TTL).timestamp(),
    )
    try:
        sms_delivery.enqueue(delivery)
    except SmsError:
        store().delete(key)
        release(limits.intervals)
        raise


def check_code(phone: str, *, purpose: str, code: str, client: Client) -> None:
    """Raise unless ``code`` is the live code this browser asked for; counts the try. Does not
    consume: call ``consume_code`` once the rest of the login has succeeded."""
    tries = store().incr(tries_key(phone, purpose, client), CODE_TTL)
    raw = store().get(code_key(phone, purpose, client))
    if tries > MAX_TRIES:
        store().delete(code_key(phone, purpose, client))
        raise SmsCodeTriesExceededError()
    if raw is None:
        raise SmsCodeError()
    expected = jsoncodec.loads(raw)["digest"]
    if not hmac.compare_digest(expected, _code_digest(phone, purpose, code)):
        raise SmsCodeError()
    # The right code gives its tries back: a login that then stops at the lock or at the
    # account's state must not turn into "验证码错误次数过多" when the person tries again.
    store().delete(tries_key(phone, purpose, client))


def consume_code(phone: str, *, purpose: str, client: Client) -> None:
    """Use the code up; of two parallel logins with the same code only one gets past here.
    Its tries need no clearing: ``check_code`` gave them back, and the next code's send
    starts them afresh."""
    if store().consume(code_key(phone, purpose, client)) is None:
        raise SmsCodeError()
