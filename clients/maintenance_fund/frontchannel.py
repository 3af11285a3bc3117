"""Front-Channel Logout 1.0 receiver: the provider's logged-out page loads this URL in a hidden
iframe, and the browser's local session ends here.

We registered ``frontchannel_logout_session_required``, so the request carries ``iss`` and
``sid`` (§2): ``iss`` must be our provider, and only a local session of that ``sid`` ends
(a stale or forged frame cannot end another login of this browser). The answer may be framed
by the provider only, and is never cached (§3). Back-channel logout (``backchannel``) stays: it
also reaches sessions whose browser is not the one logging out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, request, session
from flask.typing import ResponseReturnValue

from . import oidc
from .backchannel import ENDED_NOTICE

bp = Blueprint("frontchannel", __name__)


def provider_origin() -> str:
    issuer = urlsplit(oidc.current_config().issuer)
    return f"{issuer.scheme}://{issuer.netloc}"


@bp.get("/frontchannel-logout")
def receive() -> ResponseReturnValue:
    """200 (the local session of ``sid`` ended, or there was none); 400 when ``iss`` is not our
    provider or ``sid`` is missing."""
    headers = {
        "Content-Security-Policy": f"default-src 'none'; frame-ancestors {provider_origin()}",
        "Cache-Control": "no-cache, no-store",
        "Pragma": "no-cache",
        "Content-Type": "text/plain; charset=utf-8",
    }
    issuer = request.args.get("iss", "")
    sid = request.args.get("sid", "")
    if issuer != oidc.current_config().issuer or not sid:
        return "invalid front-channel logout request", 400, headers
    login = session.get(oidc.LOGIN_KEY)
    local_sid = login.get("userinfo", {}).get("sid") if isinstance(login, dict) else None
    if local_sid == sid:
        session.clear()
        session[ENDED_NOTICE] = True
        return "logged out", 200, headers
    return "no session of this sid", 200, headers
