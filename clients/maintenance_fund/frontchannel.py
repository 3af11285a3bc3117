"""Front-Channel Logout 1.0 receiver: the provider's logged-out page loads this URL in a hidden
iframe, and the local session of the ended provider session ends.

We registered ``frontchannel_logout_session_required``, so the request carries ``iss`` and
``sid`` (§2): ``iss`` must be our provider, and only the session of that ``sid`` ends. The
frame's request carries our session cookie only where the browser sends cookies to a framed
site (same site, or third-party cookies allowed); so the ``sid`` is also recorded as ended, like
a back-channel notice, and the local session holding it ends at its next request whatever the
browser sent (``backchannel.end_if_ended_by_provider``). A ``sid`` is 128 random bits known only
to the provider, this relying party and the person's browser. The answer may be framed by the
provider only, and is never cached (§3). Back-channel logout stays: it also reaches sessions
whose browser is not the one logging out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, request, session
from flask.typing import ResponseReturnValue

from . import oidc
from .backchannel import ENDED_NOTICE, ended_sessions

bp = Blueprint("frontchannel", __name__)


def provider_origin() -> str:
    issuer = urlsplit(oidc.current_config().issuer)
    return f"{issuer.scheme}://{issuer.netloc}"


@bp.get("/frontchannel-logout")
def receive() -> ResponseReturnValue:
    """200 once the session of ``sid`` is recorded as ended (and this browser's, if the cookie
    came, cleared); 400 when ``iss`` is not our provider or ``sid`` is missing."""
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
    ended_sessions().end_sid(sid)
    login = session.get(oidc.LOGIN_KEY)
    local_sid = login.get("userinfo", {}).get("sid") if isinstance(login, dict) else None
    if local_sid == sid:
        session.clear()
        session[ENDED_NOTICE] = True
        return "logged out", 200, headers
    return "session ended", 200, headers
