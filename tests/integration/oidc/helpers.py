"""Token endpoint steps as a relying party takes them, what a token's holder can still do with
it, and the tools of the race tests: threads released together, and a pause point that holds
one request at a chosen step until the test lets it go."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.flows import REDIRECT_URI, Pkce, authorize_params, follow_to_code, token_request

WAIT_SECONDS = 30  # a guard against a hung thread, never a timing assumption


def mint_code(client: FlaskClient, rp: Any, pkce: Pkce | None = None, **extra: str) -> str:
    params = authorize_params(rp.client_id, pkce or Pkce.new(), **extra)
    return follow_to_code(client, params)["code"]


def redeem(client: FlaskClient, rp: Any, code: str, verifier: str, **extra: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    data.update(extra)
    return token_request(client, data, auth=rp.auth)


def refresh(client: FlaskClient, rp: Any, refresh_token: str) -> Any:
    return token_request(
        client, {"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=rp.auth
    )


def userinfo_status(client: FlaskClient, access_token: str) -> int:
    response = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return int(response.status_code)


def live_tokens() -> int:
    """Committed token rows that are not revoked, read in a session of their own."""
    from idp.oidc.models import Token

    with current_app.extensions["idp.db"]() as session:
        found = session.scalar(
            select(func.count()).select_from(Token).where(Token.revoked_at.is_(None))
        )
        return int(found or 0)


def audit_count(action: str) -> int:
    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        found = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )
        return int(found or 0)


def run_in_parallel(app: Flask, count: int, call: Callable[[FlaskClient], Any]) -> list[Any]:
    """Run ``call(test_client)`` in ``count`` threads released together; returns the results."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        local = app.test_client()
        barrier.wait()
        result = call(local)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


class PausePoint:
    """Holds the first call of a wrapped method until ``release``: the test runs the other side
    of a race at exactly that step, then lets the held request finish."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()
        self._taken = threading.Lock()

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def paused(*args: Any, **kwargs: Any) -> Any:
            if self._taken.acquire(blocking=False):
                self.reached.set()
                assert self.released.wait(WAIT_SECONDS), "the paused request was never released"
            return real(*args, **kwargs)

        return paused

    def wait_until_reached(self) -> None:
        assert self.reached.wait(WAIT_SECONDS), "the request never reached the pause point"

    def release(self) -> None:
        self.released.set()

    def race(self, request: Callable[[], Any], other_side: Callable[[], Any]) -> tuple[Any, Any]:
        """Start ``request`` in a thread, run ``other_side`` once it is held here, let it go;
        returns (the held request's result, what ``other_side`` returned)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            held = pool.submit(request)
            self.wait_until_reached()
            try:
                other = other_side()
            finally:
                self.release()
            return held.result(timeout=WAIT_SECONDS), other
