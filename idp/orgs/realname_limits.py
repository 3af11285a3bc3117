"""Limits on the real-name check (手机二要素校验), so 【增加】, a phone change and the join page
are no unlimited name↔phone oracle, each try a paid vendor query.

Before the vendor is asked: at most ``IDP_REALNAME_ADMIN_MISMATCH_LIMIT`` unconfirmed checks
per admin per hour (a check that matches gives its slot back, so honest work is not slowed;
reserving before the query bounds parallel tries too), ``IDP_REALNAME_ORG_DAILY_LIMIT`` checks
per organisation per day, ``IDP_REALNAME_IP_HOURLY_LIMIT`` per network per hour and
``IDP_REALNAME_PHONE_DAILY_LIMIT`` per phone per day. A refusal queries nothing, changes
nothing, is audited (``orgs.realname_limited``), and past ``IDP_REALNAME_ALERT_AFTER`` refusals
of one actor in an hour an alert event (``orgs.realname_abuse_alert``) is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import has_request_context
from flask_babel import lazy_gettext as _l

from idp import audit
from idp.config import settings
from idp.db import utcnow
from idp.errors import IdpError
from idp.realname import Verdict, verifier
from idp.security import client_ip, mask_phone
from idp.store import store

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LIMITED = "orgs.realname_limited"
ALERT = "orgs.realname_abuse_alert"


class RealNameLimitedError(IdpError):
    code = "realname_limited"
    status = 429
    message = _l("手机二要素校验次数过多，请稍后再试")


@dataclass(frozen=True)
class Asker:
    """Who asks for a check: the actor (an org admin, or the phone on the join page) and the
    organisation it is for."""

    actor: str
    org_id: int


def _day() -> str:
    return utcnow().strftime("%Y%m%d")


def _hour() -> str:
    return utcnow().strftime("%Y%m%d%H")


def reserve(asker: Asker, phone: str) -> str:
    """Take this check from every limit or raise ``RealNameLimitedError``; returns the key of
    the actor's unconfirmed-check slot, to be given back when the check matches."""
    config = settings()
    hour = _hour()
    unconfirmed = f"realname:unconfirmed:{asker.actor}:{hour}"
    confirmed = f"realname:confirmed:{asker.actor}:{hour}"
    counts = [
        (unconfirmed, config.realname_admin_mismatch_limit, HOUR, store().count(confirmed)),
        (f"realname:org:{asker.org_id}:{_day()}", config.realname_org_daily_limit, DAY, 0),
        (f"realname:phone:{phone}:{_day()}", config.realname_phone_daily_limit, DAY, 0),
    ]
    if has_request_context():
        ip_key = f"realname:ip:{client_ip()}:{hour}"
        counts.append((ip_key, config.realname_ip_hourly_limit, HOUR, 0))
    for key, limit, window, given_back in counts:
        if store().incr(key, window) - given_back > limit:
            refuse(asker, phone, reason=key.split(":")[1])
    return confirmed


def refuse(asker: Asker, phone: str, *, reason: str) -> None:
    audit.record(
        LIMITED,
        actor=asker.actor,
        target=mask_phone(phone),
        result=reason,
        org_id=asker.org_id,
    )
    refusals = store().incr(f"realname:refusals:{asker.actor}:{_hour()}", HOUR)
    if refusals == settings().realname_alert_after:
        audit.record(
            ALERT,
            actor=asker.actor,
            target=f"org:{asker.org_id}",
            result="alert",
            org_id=asker.org_id,
            details={"refusals": str(refusals)},
        )
    raise RealNameLimitedError()


def limited_verdict(asker: Asker, *, name: str, phone: str) -> Verdict:
    """The vendor's verdict on (name, phone), within the limits."""
    confirmed = reserve(asker, phone)
    verdict = verifier().verify(name=name, phone=phone)
    if verdict == Verdict.MATCH:
        store().incr(confirmed, HOUR)
    return verdict
