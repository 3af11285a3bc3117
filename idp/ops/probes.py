"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve logins: database,
ephemeral store and signing keys reachable), for load balancers and orchestrators.

Both are plain JSON: no session, no cookie, no CSRF (GET only), ``Cache-Control: no-store``. A
failing check is named in ``failing`` with a short reason; the full error goes to the log only,
since the probes answer anyone who can reach them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from idp import db
from idp.signing import ALGORITHMS, NoSigningKeyError, key_store
from idp.store import store

logger = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)

OK = "ok"
PROBE_KEY = "ops:readyz"  # read, never written
PROBE_DATA = b"readyz"


@bp.get("/healthz")
def healthz() -> Response:
    """Alive: answers without touching anything, so a failing dependency does not get the
    process restarted (that is what /readyz reports)."""
    return _uncached(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {name: _outcome(name, check) for name, check in CHECKS.items()}
    failing = [name for name, outcome in checks.items() if outcome != OK]
    body: dict[str, object] = {"status": "not ready" if failing else "ready", "checks": checks}
    if failing:
        body["failing"] = failing
    return _uncached(jsonify(body)), 503 if failing else 200


def check_database() -> None:
    with db.engine().connect() as connection:
        connection.execute(text("SELECT 1"))


def check_store() -> None:
    store().get(PROBE_KEY)


def check_signing_keys() -> None:
    """An active key for every algorithm discovery advertises, and the store signs with it."""
    keys = key_store()
    for alg in ALGORITHMS:
        keys.sign(keys.signing_key(alg), PROBE_DATA)


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "store": check_store,
    "signing_keys": check_signing_keys,
}


def _outcome(name: str, check: Callable[[], None]) -> str:
    """``ok`` or a short reason that names no host, path or credential: the kind of error
    behind the failure (a store's own error wraps the driver's)."""
    try:
        check()
    except NoSigningKeyError as error:
        return str(error)
    except Exception as error:
        logger.warning("readiness check %s failed", name, exc_info=True)
        return f"unavailable ({type(error.__cause__ or error).__name__})"
    return OK


def _uncached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
