"""Prometheus metrics: what the provider counts, and the one mapping from audit events to them.

Most outcomes (logins, lockouts, SMS deliveries, certificate checks) are already audit events,
so ``count_audit_event`` turns each recorded event into its counters; only what is not audited
(token issuance, queued SMS, real-name checks, requests) is counted where it happens.

Labels are bounded sets: endpoint names, grant types, error codes. Never a phone, a name or a
path. With several worker processes set ``PROMETHEUS_MULTIPROC_DIR`` (``idp-serve`` empties it
before the workers start): each worker writes its values there and ``/metrics`` sums them
(``exposition``).
"""

from __future__ import annotations

import os
import re
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase

REQUESTS = Counter(
    "idp_http_requests_total",
    "HTTP requests answered, by Flask endpoint and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "idp_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
LOGINS = Counter(
    "idp_logins_total",
    "Login attempts, by method (password, certificate) and outcome.",
    ["method", "outcome"],
)
LOCKOUTS = Counter(
    "idp_lockouts_total", "Logins refused by a lockout: an account's or a network's.", ["scope"]
)
SMS = Counter(
    "idp_sms_total", "SMS by outcome: queued, sent, retrying, failed, not_sent.", ["outcome"]
)
TOKENS = Counter("idp_tokens_issued_total", "Tokens issued, by grant type.", ["grant_type"])
CERTIFICATES = Counter(
    "idp_certificate_validations_total",
    "Certificate (UKey) login validations: valid, or the reason it was refused.",
    ["outcome"],
)
REALNAME = Counter(
    "idp_realname_checks_total",
    "Real-name checks (手机二要素): match, mismatch, unavailable.",
    ["outcome"],
)

LOCKOUT_SCOPES = {"account_locked": "account", "too_many_attempts": "network"}
CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _code(value: str) -> str:
    """A label value from an error code; anything else (it should not happen) is ``other``, so a
    caller's mistake cannot put personal data or an unbounded set into a label."""
    return value if CODE.fullmatch(value) else "other"


# Each metric's labelled children, by their label values (bounded sets, as above).
_children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}


def _labelled(metric: MetricWrapperBase, *values: str) -> Any:
    """``metric.labels(*values)``, kept: ``labels`` takes a lock and builds its key on every
    call, once per combination is enough."""
    key = (metric, values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def _login(method: str, result: str) -> None:
    outcome = "success" if result == "success" else _code(result)
    _labelled(LOGINS, method, outcome).inc()
    if outcome in LOCKOUT_SCOPES:
        _labelled(LOCKOUTS, LOCKOUT_SCOPES[outcome]).inc()


def _certificate(result: str) -> None:
    _login("certificate", result)
    _labelled(CERTIFICATES, "valid" if result == "success" else _code(result)).inc()


AUDIT_METRICS = {
    "auth.login_succeeded": lambda result: _login("password", result),
    "auth.login_failed": lambda result: _login("password", result),
    "auth.cert_login_succeeded": _certificate,
    "auth.cert_login_failed": _certificate,
    "sms.delivered": lambda _result: _labelled(SMS, "sent").inc(),
    "sms.delivery_retrying": lambda _result: _labelled(SMS, "retrying").inc(),
    "sms.delivery_failed": lambda _result: _labelled(SMS, "failed").inc(),
    "sms.not_sent": lambda _result: _labelled(SMS, "not_sent").inc(),
}


def count_audit_event(action: str, result: str) -> None:
    """The counters an audit event stands for (none for most)."""
    counter = AUDIT_METRICS.get(action)
    if counter is not None:
        counter(result)


def count_token(grant_type: str) -> None:
    _labelled(TOKENS, _code(grant_type or "unknown")).inc()


def count_sms_queued() -> None:
    _labelled(SMS, "queued").inc()


def count_realname(outcome: str) -> None:
    _labelled(REALNAME, _code(outcome)).inc()


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    _labelled(REQUESTS, endpoint, method, str(status)).inc()
    _labelled(LATENCY, endpoint).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric: this process's, or all workers' summed in multiprocess
    mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
