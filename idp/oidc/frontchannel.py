"""OpenID Connect Front-Channel Logout 1.0: the page that says the person has logged out
(after RP-initiated logout or the provider's own logout) loads, in hidden iframes, the
``frontchannel_logout_uri`` of every relying party the ended session was used at, so each can
end its own session in the browser.

The relying parties are those issued a code in that session (``sid``), as for back-channel
logout; a ``frontchannel_logout_session_required`` client gets ``iss`` and ``sid`` (§2). The
page's CSP ``frame-src`` names exactly the origins of those iframes (``idp.security``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.config import settings
from idp.oidc.interaction import origin_of
from idp.oidc.models import AuthorizationCode, Client

FRAMES = "logout_frames"  # g: the iframe URLs of this response's logged-out page
FRAME_ORIGINS = "csp_frame_src"  # g: the origins its CSP frame-src allows (idp.security)


def frame_uri(client: Client, sid: str) -> str | None:
    uri = client.frontchannel_logout_uri
    if not uri or client.disabled:
        return None
    if not client.frontchannel_logout_session_required:
        return uri
    separator = "&" if urlsplit(uri).query else "?"
    return uri + separator + urlencode({"iss": settings().issuer, "sid": sid})


def frames_for_session(session: Session, sid: str) -> list[str]:
    """The front-channel logout URLs of the relying parties the session ``sid`` was used at."""
    client_ids = set(
        session.scalars(select(AuthorizationCode.client_id).where(AuthorizationCode.sid == sid))
    )
    if not client_ids:
        return []
    clients = session.scalars(
        select(Client).where(Client.client_id.in_(client_ids)).order_by(Client.client_id)
    )
    return [uri for client in clients if (uri := frame_uri(client, sid)) is not None]


def on_logout(login: Any, *, session: Session) -> None:
    """Receiver of ``idp.auth.session.logged_out``: the page this request renders carries the
    iframes, and its CSP allows their origins."""
    frames = frames_for_session(session, login.sid)
    setattr(g, FRAMES, frames)
    setattr(g, FRAME_ORIGINS, sorted({origin_of(uri) for uri in frames}))


def logout_frames() -> list[str]:
    """The iframes the logged-out page of this request loads (its templates call this)."""
    frames: list[str] = g.get(FRAMES, [])
    return frames
