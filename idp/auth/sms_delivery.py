"""Every SMS the provider sends goes through here: queued for ``idp worker`` where the request
must not wait for the vendor (codes, notices, rejections), or sent at once where the caller
must know the outcome before it saves anything (initial passwords).

Queued, the web request only reserves the limits and hands the message over, so a known and
an unknown phone answer alike and a slow or failing vendor holds no web worker. Whether a
login code goes out at all (the phone has a usable account) is decided by the worker, so the
request does the same work for every phone. The worker retries a failed send with backoff
(``IDP_SMS_RETRIES``, ``IDP_SMS_RETRY_DELAY``, times 3 each time), then gives up; a code whose
delivery failed is withdrawn and its resend interval given back, so the person can ask again at
once. Every outcome is an audit event (``sms.delivered``, ``sms.delivery_retrying``,
``sms.delivery_failed``, ``sms.not_sent``) with the masked phone, which ``idp sms status``
counts for operators.
"""

from __future__ import annotations

import hmac
import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from flask import Flask
from huey.api import TaskWrapper
from redis import RedisError

from idp import audit, context, db, metrics
from idp.identity.lookup import find_account_by_phone
from idp.sealing import seal, unseal
from idp.security import mask_phone
from idp.sms import SmsError, SmsMessage, gateway
from idp.sms.messages import render_message
from idp.sms.queue import worker_task
from idp.store import store

log = logging.getLogger(__name__)

DELIVERED = "sms.delivered"
RETRYING = "sms.delivery_retrying"
FAILED = "sms.delivery_failed"
NOT_SENT = "sms.not_sent"
OUTCOMES = (DELIVERED, RETRYING, FAILED, NOT_SENT)
TASK_NAME = "deliver_sms"


@dataclass(frozen=True)
class Withdrawal:
    """What a code's failed delivery undoes: the code (only while it is still this one) and the
    resend intervals it took."""

    code_key: str
    digest: str
    intervals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """One SMS for the worker. ``params`` fill the purpose's template (they may hold a code or a
    password: the whole delivery is sealed while it waits in the queue)."""

    phone: str
    purpose: str
    params: dict[str, str]
    org_id: int | None = None
    only_to_account: bool = False  # login codes: only a phone with an account gets one
    withdrawal: Withdrawal | None = None
    not_after: float | None = None  # epoch seconds; later the message is pointless

    def sealed(self) -> str:
        return seal(json.dumps(asdict(self), ensure_ascii=False))

    @classmethod
    def unsealed(cls, value: str) -> Delivery:
        data: dict[str, Any] = json.loads(unseal(value))
        withdrawal = data.pop("withdrawal")
        return cls(**data, withdrawal=Withdrawal(**withdrawal) if withdrawal else None)


class SmsQueueError(SmsError):
    """The queue could not take the message: nothing will be delivered (503, as a failed send)."""


def enqueue(delivery: Delivery) -> None:
    """Hand ``delivery`` to the worker; ``SmsQueueError`` when the queue cannot be reached."""
    task: TaskWrapper = context.app().extensions["idp.sms_task"]
    try:
        task(delivery.sealed())
    except (OSError, sqlite3.Error, RedisError) as error:
        raise SmsQueueError(detail=f"queue unavailable: {type(error).__name__}") from error
    metrics.count_sms_queued()


def enqueue_after_commit(delivery: Delivery) -> None:
    """Queue ``delivery`` once the request's transaction has committed, so that a decision which
    is rolled back sends nothing."""
    db.after_commit(lambda: _enqueue_committed(delivery))


def _enqueue_committed(delivery: Delivery) -> None:
    try:
        enqueue(delivery)
    except SmsQueueError as error:  # committed already: it can only be told
        log.error(
            "SMS to %s (%s) not queued: %s",
            mask_phone(delivery.phone),
            delivery.purpose,
            error.detail,
        )


def send_now(delivery: Delivery) -> None:
    """Send in this request (the caller must know before it saves); raises ``SmsError``. The
    caller audits the outcome with its own action (it is part of the caller's change)."""
    gateway().send(delivery_message(delivery))


def delivery_message(delivery: Delivery) -> SmsMessage:
    return render_message(phone=delivery.phone, purpose=delivery.purpose, **delivery.params)


def record(action: str, delivery: Delivery, *, result: str = "success") -> None:
    """An outcome for the audit trail: the masked phone, the purpose and the error code (the
    vendor's own words go to the worker's log only: they may echo personal data)."""
    audit.record(
        action,
        actor="system",
        target=mask_phone(delivery.phone),
        result=result,
        org_id=delivery.org_id,
        details={"purpose": delivery.purpose},
    )


# --- the worker ---------------------------------------------------------------------------------


def deliver(sealed: str, *, retries_left: int) -> None:
    """One attempt of the worker (inside an app context); raises ``SmsError`` to be retried."""
    delivery = Delivery.unsealed(sealed)
    reason = reason_not_to_send(delivery)
    if reason:
        withdraw(delivery, give_interval_back=False)
        record(NOT_SENT, delivery, result=reason)
        return
    try:
        gateway().send(delivery_message(delivery))
    except SmsError as error:
        log.warning(
            "SMS to %s (%s) failed, %d retries left: %s",
            mask_phone(delivery.phone),
            delivery.purpose,
            retries_left,
            error.detail,
        )
        if retries_left:
            record(RETRYING, delivery, result=error.code)
            raise
        withdraw(delivery, give_interval_back=True)
        record(FAILED, delivery, result=error.code)
        return
    record(DELIVERED, delivery)


def reason_not_to_send(delivery: Delivery) -> str:
    """Why ``delivery`` is pointless now ("" when it is not): a code that has expired, or a
    login code for a phone without an account (decided here, not in the request).

    A disabled or deleted account still gets its code: after the code and the password the
    login tells its owner why it cannot go on, instead of a code that never arrives."""
    if delivery.not_after is not None and time.time() > delivery.not_after:
        return "expired"
    if delivery.only_to_account and find_account_by_phone(db.session(), delivery.phone) is None:
        return "no_account"
    return ""


def withdraw(delivery: Delivery, *, give_interval_back: bool) -> None:
    """Withdraw the code of an SMS that will not arrive (unless a newer code replaced it), and
    after a failure give its resend intervals back: the person may ask again at once."""
    withdrawal = delivery.withdrawal
    if withdrawal is None:
        return
    raw = store().get(withdrawal.code_key)
    if raw is not None and hmac.compare_digest(json.loads(raw)["digest"], withdrawal.digest):
        store().delete(withdrawal.code_key)
    if give_interval_back:
        for key in withdrawal.intervals:
            store().delete(key)


def init_app(app: Flask) -> None:
    """Register the worker's task on this app's queue and queue the deliveries of committed
    transactions."""
    config = app.extensions["idp"]
    app.extensions["idp.sms_task"] = worker_task(
        app,
        lambda sealed, retries_left: deliver(sealed, retries_left=retries_left),
        name=TASK_NAME,
        retries=config.sms_retries,
        retry_delay=config.sms_retry_delay,
    )
