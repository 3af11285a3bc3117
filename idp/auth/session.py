"""Login sessions: a random id in an HttpOnly cookie, the state in the ephemeral store, with
idle and absolute lifetimes. ``sid`` (OIDC) is a separate random value, never the cookie.

An operator's session carries the account's ``credential_version`` of its login; once the
password or the phone changes, every session with an older version is over, whichever backend
holds it and whatever request is in flight, except the one that made the change (``restamp``).
Likewise a session is over once a platform admin suspends its organisation (an org admin's, or
an operator's whose every organisation is suspended): the database decides at each use.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta

from blinker import Namespace
from flask import Response, g, request
from flask import session as cookie_state

from idp import context, db, jsoncodec
from idp.config import settings
from idp.db import utcnow
from idp.identity.eligibility import credentials_current, ended_by_suspension
from idp.identity.models import Account
from idp.security import client_ip
from idp.store import store

COOKIE = "idp_session"
TOUCH_INTERVAL_MAX = 60.0  # seconds; see ``current``

signals = Namespace()
# Sent with the ended LoginSession and the request's ``session`` when a person logs out (not
# when a new login replaces a session): the token layer ends what that session was issued.
logged_out = signals.signal("logged-out")


@dataclass
class LoginSession:
    """Who is logged in and how (amr, RFC 8176), kept server-side."""

    id: str
    account_id: int | None  # operators; None for org admins (see org_id)
    kind: str  # "operator" or "org_admin"
    amr: list[str]
    acr: str
    auth_time: float
    created_at: float
    sid: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    org_id: int | None = None  # certificate logins: the registered org the certificate proves
    # certificate logins: what the verified certificate says (uscc, org_name, fingerprint,
    # subject, issuer); the registration wizard reads it while org_id is still None
    certificate: dict[str, str] | None = None
    # certificate logins: the end of the certificate's validity (Unix time), where the session
    # ends at the latest: what the certificate proved is not trusted beyond it
    not_after: float | None = None
    credential_version: int = 0  # operators: the account's version at login (or at restamp)
    # the pending authorization request whose login page began this session: that request
    # (and no other) passes from the browser's earlier login to this one
    started_for: str = ""
    # shown on the person's /account page among their sessions: where the login came from
    # (the client address and the browser's User-Agent at login) and when it was last used
    ip: str = ""
    user_agent: str = ""
    last_seen: float = 0.0

    @property
    def holder(self) -> str:
        """Whose session this is, as the index of their sessions names them (``index_key``)."""
        return index_key(kind=self.kind, account_id=self.account_id, org_id=self.org_id)


FIELDS = frozenset(f.name for f in fields(LoginSession))
USER_AGENT_MAX = 300


def _key(session_id: str) -> str:
    return f"session:{session_id}"


def index_key(*, kind: str, account_id: int | None, org_id: int | None) -> str:
    """The store index of a person's sessions: an operator's account, or an organisation's
    admin logins; "" for a certificate login not yet tied to a registered organisation."""
    if kind == "org_admin":
        return f"sessions:org:{org_id}" if org_id is not None else ""
    return f"sessions:account:{account_id}" if account_id is not None else ""


def _ends(login: LoginSession) -> datetime:
    """The absolute end of the session (its age limit, or its certificate's expiry)."""
    now = utcnow()
    absolute = timedelta(seconds=settings().session_absolute_ttl)
    ends = datetime.fromtimestamp(login.created_at, tz=now.tzinfo) + absolute
    if login.not_after is not None:
        ends = min(ends, datetime.fromtimestamp(login.not_after, tz=now.tzinfo))
    return ends


def _remaining(login: LoginSession) -> timedelta:
    return min(_ends(login) - utcnow(), timedelta(seconds=settings().session_idle_ttl))


def save(login: LoginSession) -> bool:
    """Write an existing session back (its idle lifetime starts again); False when it ended
    meanwhile. Only ``start`` creates a session, so a request still holding one that was
    logged out or ended cannot bring it back."""
    ttl = _remaining(login)
    if ttl.total_seconds() <= 0:
        store().delete(_key(login.id))
        return False
    return store().replace(_key(login.id), _encode(login), ttl)


def create(login: LoginSession) -> None:
    """Store a session that has just begun (``start``); the one way a session comes to be. It
    joins its person's index until its absolute end (``sessions_of`` drops it when it ends
    earlier)."""
    store().put(_key(login.id), _encode(login), _remaining(login))
    if login.holder:
        store().index_add(login.holder, login.id, _ends(login) - utcnow())


def _encode(login: LoginSession) -> bytes:
    return jsoncodec.dumpb(asdict(login))


def _decode(raw: bytes) -> LoginSession:
    """A stored session; fields a session stored by an older release carried are left out."""
    data = jsoncodec.loads(raw)
    return LoginSession(**{name: value for name, value in data.items() if name in FIELDS})


def start(
    *,
    account_id: int | None,
    kind: str,
    amr: list[str],
    acr: str,
    org_id: int | None = None,
    certificate: dict[str, str] | None = None,
    not_after: datetime | None = None,
    credential_version: int = 0,
    started_for: str = "",
) -> LoginSession:
    """Begin a new session (a fresh id, so a session id planted before login is useless);
    ``not_after`` ends it, at the latest, when the login's certificate expires."""
    end_current()
    renew_csrf_token()
    now = utcnow().timestamp()
    login = LoginSession(
        id=secrets.token_urlsafe(32),
        account_id=account_id,
        kind=kind,
        amr=amr,
        acr=acr,
        auth_time=now,
        created_at=now,
        org_id=org_id,
        certificate=certificate,
        not_after=not_after.timestamp() if not_after else None,
        credential_version=credential_version,
        started_for=started_for,
        ip=client_ip(),
        user_agent=request.user_agent.string[:USER_AGENT_MAX],
        last_seen=now,
    )
    create(login)
    g.login_session = login
    g.set_session_cookie = True
    return login


def renew_csrf_token() -> None:
    """A new CSRF secret at login: a token learnt before (e.g. planted with a cookie) is
    useless afterwards. The next form asks Flask-WTF for a token of the new secret."""
    cookie_state.pop("csrf_token", None)
    g.pop("csrf_token", None)


def renew(login: LoginSession) -> bool:
    """Move a live session to a fresh id, keeping its state and ``sid`` (session fixation:
    after registration or a credential change, an id known before is useless); False when
    it ended meanwhile (it is not brought back)."""
    if store().get(_key(login.id)) is None:
        return False
    old_id = login.id
    login.id = secrets.token_urlsafe(32)
    create(login)
    _drop(login.holder, old_id)
    g.login_session = login
    g.set_session_cookie = True
    renew_csrf_token()
    return True


def current() -> LoginSession | None:
    """The live session of this request; touching it extends the idle lifetime. It is written
    back only once a tenth of the idle lifetime (at most ``TOUCH_INTERVAL_MAX``) has passed
    since its last write: the idle lifetime then runs from at most that long before the last
    request, and the requests of one login (authorize, resume, consent) cost no write each."""
    request_globals = context.g()
    if "login_session" in request_globals:
        value: LoginSession | None = request_globals.login_session
        return value
    session_id = context.request().cookies.get(COOKIE)
    login = None
    if session_id:
        raw = store().get(_key(session_id))
        if raw is not None:
            login = _decode(raw)
            written_at, login.last_seen = login.last_seen, utcnow().timestamp()
            if not opened_with_current_credentials(login) or ended_by_suspension(
                db.session(), login
            ):
                end(login)
                login = None
            elif login.last_seen - written_at >= _touch_interval() and not save(login):
                login = None
    request_globals.login_session = login
    return login


def _touch_interval() -> float:
    return min(TOUCH_INTERVAL_MAX, settings().session_idle_ttl / 10)


def opened_with_current_credentials(login: LoginSession) -> bool:
    """False for an operator's session opened before the account's password or phone changed
    (the database decides, so a request of that session in flight cannot keep it alive)."""
    if login.account_id is None:
        return True
    account = db.session().get(Account, login.account_id)
    db.keep(account)  # the request's next ``get`` of the account (eligibility) is not a SELECT
    return account is not None and credentials_current(account, login.credential_version)


def restamp(login: LoginSession, credential_version: int) -> None:
    """Keep the session that changed the credentials: it carries their new version under a
    new id (unless it ended meanwhile, e.g. logged out in another tab)."""
    login.credential_version = credential_version
    if save(login):
        renew(login)


def end_current() -> LoginSession | None:
    """Log out: drop the server-side state and clear the cookie."""
    login = current()
    if login is not None:
        end(login)
    g.login_session = None
    g.set_session_cookie = True
    return login


def log_out() -> LoginSession | None:
    """End the current session because its person logged out, and say so (``logged_out``)."""
    login = end_current()
    if login is not None:
        logged_out.send(login, session=db.session())
    return login


def end(login: LoginSession) -> None:
    _drop(login.holder, login.id)


def _drop(holder: str, session_id: str) -> None:
    store().delete(_key(session_id))
    if holder:
        store().index_remove(holder, session_id)


def sessions_of(holder: str) -> list[LoginSession]:
    """The live sessions of a person (``LoginSession.holder``), oldest first. Members of the
    index whose session ended (logged out, expired, opened with an old password) are dropped
    from it on the way."""
    found = []
    for session_id in store().index_members(holder) if holder else []:
        raw = store().get(_key(session_id))
        login = _decode(raw) if raw is not None else None
        if login is None or not opened_with_current_credentials(login):
            _drop(holder, session_id)
            continue
        found.append(login)
    return sorted(found, key=lambda login: (login.created_at, login.sid))


def end_listed(holder: str, sid: str) -> LoginSession | None:
    """End the session ``sid`` of ``holder`` from a list of their sessions, as its logout
    would (``logged_out``: its tokens end, its relying parties are told); None when the person
    has no such live session (another person's, or one that ended already)."""
    current_login = current()
    if current_login is not None and current_login.holder == holder and current_login.sid == sid:
        return log_out()
    for login in sessions_of(holder):
        if login.sid == sid:
            end(login)
            logged_out.send(login, session=db.session())
            return login
    return None


def forget_request_state() -> None:
    """Drop what an earlier request cached in ``g`` (an app context may span requests)."""
    for name in ("login_session", "set_session_cookie", "audit_events", "new_browser_id"):
        g.pop(name, None)


def write_cookie(response: Response) -> Response:
    """Set or clear the session cookie when this request started or ended a session."""
    request_globals = context.g()
    if not request_globals.get("set_session_cookie"):
        return response
    login = request_globals.get("login_session")
    if login is None:
        response.delete_cookie(
            COOKIE, path="/", httponly=True, samesite="Lax", secure=settings().secure_cookies
        )
    else:
        response.set_cookie(
            COOKIE,
            login.id,
            path="/",
            httponly=True,
            samesite="Lax",
            # A browser-session cookie: closing the browser ends the login; the server ends
            # it too, after the idle and absolute lifetimes.
            secure=settings().secure_cookies,
        )
    return response
