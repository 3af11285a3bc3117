"""Pending authorization requests: /authorize hands off to login, role choice and consent, and
they hand back by redirecting to /authorize with the request and its record's id
(node-oidc-provider's interactions; ``resume_url``).

The record lives in the ephemeral store, so any provider instance can resume it.

A record belongs to the browser that started it (the digest of its ``idp_browser`` id) and,
once someone is logged in, to that login session (its ``sid``): a decision taken on one
person's pages never completes another person's login with the first one's ``state`` and PKCE
challenge (docs/protocol.md P17). It passes to a newer login of the same browser only
when that login was made on this request's own login page (``LoginSession.started_for``).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Response, g, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from idp import audit, context, jsoncodec
from idp.auth.client import current_client
from idp.auth.session import LoginSession
from idp.db import utcnow
from idp.errors import IdpError
from idp.identity.models import Identity
from idp.store import store

TTL = timedelta(minutes=15)


@dataclass
class Interaction:
    id: str
    client_id: str
    query: str  # the authorization request, re-played by /authorize when a page hands back
    created_at: float
    identity: Identity | None = None  # chosen on the role choice page
    consented: bool = False
    denied: bool = False  # the user cancelled on the role choice or consent page
    browser: str = ""  # digest of the idp_browser id of the browser that started the request
    sid: str = ""  # the login session the request belongs to; empty until someone logs in


class InteractionRefusedError(IdpError):
    """The pending request is another browser's or another login's."""

    code = "interaction_refused"
    status = 403
    message = _l("该登录请求不属于当前浏览器或当前登录账号，请从应用重新发起登录。")


def _key(interaction_id: str) -> str:
    return f"interaction:{interaction_id}"


def new(*, client_id: str, params: dict[str, str], login: LoginSession | None) -> Interaction:
    """A record for this request, bound to this browser and its login; stored (``save``) only
    when a page takes the request over."""
    query = urlencode([(k, v) for k, v in params.items() if k != "interaction"])
    return Interaction(
        id=secrets.token_urlsafe(18),
        client_id=client_id,
        query=query,
        created_at=utcnow().timestamp(),
        browser=current_client().browser,
        sid=login.sid if login is not None else "",
    )


def check_owner(record: Interaction, login: LoginSession | None, *, step: str) -> None:
    """Refuse (403, audited, the record untouched) a request of another browser or login."""
    if record.browser == current_client().browser and (
        not record.sid or (login is not None and login.sid == record.sid)
    ):
        return
    audit.record(
        "oidc.interaction_refused",
        actor=_actor(login),
        target=f"client:{record.client_id}",
        result="other_browser" if record.browser != current_client().browser else "other_login",
        details={"step": step},
    )
    raise InteractionRefusedError()


def _actor(login: LoginSession | None) -> str:
    if login is None:
        return "anonymous"
    if login.account_id is not None:
        return f"account:{login.account_id}"
    return f"org:{login.org_id}"


def claim(record: Interaction, login: LoginSession | None, *, step: str) -> None:
    """Where a request resumes: check the owner, then bind it to the login now holding it.

    A login made on this request's own login page takes it over (re-authentication for
    ``prompt=login``, ``max_age`` or another account); what the earlier login decided for it
    (role, consent, refusal) was that person's and is dropped."""
    if (
        login is not None
        and login.sid != record.sid
        and login.started_for == record.id
        and record.browser == current_client().browser
    ):
        if record.sid:
            record.identity, record.consented, record.denied = None, False, False
        record.sid = login.sid
        save(record)
        return
    check_owner(record, login, step=step)
    if login is not None and not record.sid:
        record.sid = login.sid
        save(record)


def authorize_url(record: Interaction) -> str:
    """/authorize again, with the request and the record that remembers what its pages decided."""
    return f"{url_for('oidc.authorize')}?{record.query}&interaction={record.id}"


def resume_url(interaction_id: str) -> str:
    """Where a page hands the request back (also the login's, ``continuation.hand_back_url``):
    straight to /authorize, which checks the owner as /authorize/resume does, one redirect
    fewer per login. A record that is gone or another browser's goes through
    /authorize/resume, which says so without showing the request (its ``state``) to whoever
    only knows the record's id."""
    record = load(interaction_id)
    if record is None or record.browser != current_client().browser:
        return url_for("oidc.resume", interaction=interaction_id)
    return authorize_url(record)


def save(record: Interaction) -> None:
    data = {**asdict(record), "identity": record.identity and record.identity.to_json()}
    store().put(_key(record.id), jsoncodec.dumpb(data), TTL)
    _seen()[record.id] = record


def load(interaction_id: str) -> Interaction | None:
    """The record, read from the store once per request (the view, then the response's
    ``form-action``); what this request saved or finished is what it sees afterwards."""
    if not interaction_id:
        return None
    seen = _seen()
    if interaction_id not in seen:
        seen[interaction_id] = _read(interaction_id)
    return seen[interaction_id]


def _read(interaction_id: str) -> Interaction | None:
    raw = store().get(_key(interaction_id))
    if raw is None:
        return None
    data = jsoncodec.loads(raw)
    return Interaction(**{**data, "identity": Identity.from_json(data.get("identity"))})


def finish(record: Interaction) -> None:
    store().delete(_key(record.id))
    _seen()[record.id] = None


def forget_request_state() -> None:
    """Drop the records an earlier request read (an app context may span requests)."""
    g.pop("interactions", None)


def _seen() -> dict[str, Interaction | None]:
    seen: dict[str, Interaction | None] = context.g().setdefault("interactions", {})
    return seen


def redirect_origin(record: Interaction) -> str:
    """Origin of the (already validated) redirect URI of this request."""
    return origin_of(dict(parse_qsl(record.query)).get("redirect_uri", ""))


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def allow_redirect_in_form_action(response: Response) -> Response:
    """CSP ``form-action`` also governs the redirects that follow a form POST (CSP3 §6.4.1):
    pages of a pending authorization request may end in a redirect to the client, so its
    origin joins ``form-action`` for them."""
    try:
        interaction_id = context.request().values.get("interaction", "")
    except HTTPException:  # an oversized or malformed body: the error response stands as is
        return response
    if interaction_id and "X-Form-Action" not in response.headers:
        record = load(interaction_id[:64])
        if record is not None and (origin := redirect_origin(record)):
            response.headers["X-Form-Action"] = origin
    return response
