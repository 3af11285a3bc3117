"""Back-Channel Logout 1.0 receiver: the provider tells this relying party that a login
session ended (logout elsewhere, password changed, operator deleted, organisation suspended),
and the local session of
that ``sid`` ends at its next request.

The logout token is checked as §2.6 says: signed by the provider (its JWKS, its ID token
algorithms), ``iss`` the provider, ``aud`` us, ``iat``/``exp`` current, the back-channel
``events`` member, a ``sid`` (we registered ``backchannel_logout_session_required``), no
``nonce``, and a ``jti`` not seen before. Ended ``sid`` values and seen ``jti`` values are kept
in SQLite (``RP_STATE_FILE``; in memory when unset), so several browsers and restarts agree.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import oidc

bp = Blueprint("backchannel", __name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
EXTENSION = "maintenance_fund.ended_sessions"
LEEWAY = 120  # seconds of clock difference tolerated for iat/exp
KEEP_SECONDS = 8 * 24 * 3600  # longer than any session of ours can last


class InvalidLogoutTokenError(Exception):
    """§2.8: the token failed a check; the provider gets 400 and nothing ends."""


class EndedSessions:
    """The ``sid`` values the provider said have ended, and the ``jti`` values already used."""

    def __init__(self, path: str) -> None:
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path or ":memory:", check_same_thread=False)
        with self.lock, self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS ended (sid TEXT PRIMARY KEY, at REAL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS seen (jti TEXT PRIMARY KEY, at REAL)")

    def end(self, sid: str, jti: str) -> bool:
        """Record the ended session; False when the ``jti`` was used before (a replay)."""
        now = time.time()
        with self.lock, self.db:
            self.db.execute("DELETE FROM seen WHERE at < ?", (now - KEEP_SECONDS,))
            self.db.execute("DELETE FROM ended WHERE at < ?", (now - KEEP_SECONDS,))
            if self.db.execute("SELECT 1 FROM seen WHERE jti = ?", (jti,)).fetchone():
                return False
            self.db.execute("INSERT INTO seen VALUES (?, ?)", (jti, now))
            self.db.execute("INSERT OR REPLACE INTO ended VALUES (?, ?)", (sid, now))
        return True

    def end_sid(self, sid: str) -> None:
        """Record the ended session of a front-channel logout (which has no ``jti``)."""
        with self.lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO ended VALUES (?, ?)", (sid, time.time()))

    def has_ended(self, sid: str) -> bool:
        with self.lock:
            return bool(self.db.execute("SELECT 1 FROM ended WHERE sid = ?", (sid,)).fetchone())


def ended_sessions() -> EndedSessions:
    value: EndedSessions = current_app.extensions[EXTENSION]
    return value


def verified_claims(token: str) -> dict[str, Any]:
    config = oidc.current_config()
    metadata = oidc.load_metadata(config)
    try:
        keys = KeySet.import_key_set(oidc.idp_client().fetch_jwk_set())
        decoded = jwt.decode(
            token, keys, algorithms=metadata.get("id_token_signing_alg_values_supported")
        )
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
            sid={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise InvalidLogoutTokenError(str(error)) from error
    claims: dict[str, Any] = decoded.claims
    if decoded.header.get("typ", "logout+jwt") != "logout+jwt":
        raise InvalidLogoutTokenError("not a logout token (typ)")
    if not isinstance(claims.get("events"), dict) or not isinstance(
        claims["events"].get(EVENT), dict
    ):
        raise InvalidLogoutTokenError("no back-channel logout event")
    if "nonce" in claims:
        raise InvalidLogoutTokenError("a logout token carries no nonce")
    return claims


@bp.post("/backchannel-logout")
def receive() -> ResponseReturnValue:
    """§2.8: 200 once the session is recorded as ended, 400 for a token that fails a check."""
    try:
        claims = verified_claims(request.form.get("logout_token", ""))
        if not ended_sessions().end(str(claims["sid"]), str(claims["jti"])):
            raise InvalidLogoutTokenError("jti already used")
    except InvalidLogoutTokenError as error:
        response = jsonify(error="invalid_request", error_description=str(error))
        return response, 400
    return "", 200


def end_if_ended_by_provider() -> None:
    """Before every request: a local session whose ``sid`` the provider ended is cleared."""
    login = session.get(oidc.LOGIN_KEY)
    sid = login.get("userinfo", {}).get("sid") if isinstance(login, dict) else None
    if sid and ended_sessions().has_ended(sid):
        session.clear()
        session[ENDED_NOTICE] = True


ENDED_NOTICE = "ended_by_provider"


def init_app(app: Flask, state_file: str) -> None:
    app.extensions[EXTENSION] = EndedSessions(state_file)
    app.register_blueprint(bp)
    app.before_request(end_if_ended_by_provider)
