"""/portal lists the relying parties the logged-in account may enter; entering one starts the
client's own authorization flow through its ``initiate_login_uri`` (third-party initiated
login, OIDC Core §4), or opens its ``client_uri``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response as BaseResponse

from idp import db
from idp.auth import session as login_session
from idp.config import settings
from idp.identity.eligibility import eligible_identities, load_principal
from idp.identity.models import Identity
from idp.identity.principal import Principal
from idp.oidc.clients import login_clients
from idp.oidc.models import Client

bp = Blueprint("portal", __name__, template_folder="templates")


@dataclass(frozen=True)
class PortalEntry:
    client: Client
    identities: list[Identity]
    url: str


def entry_url(client: Client, principal: Principal) -> str | None:
    """Third-party initiated login (OIDC Core §4) with the RP's registered landing page as
    ``target_link_uri``, so the RP needs no default of its own; else the landing page."""
    landing = client.client_metadata.get("client_uri")
    if client.initiate_login_uri:
        hint = {"login_hint": principal.phone} if principal.phone else {}
        target = {"target_link_uri": landing} if landing else {}
        query = urlencode({"iss": settings().issuer, **target, **hint})
        return f"{client.initiate_login_uri}?{query}"
    return str(landing) if landing else None


@bp.get("/")
def home() -> BaseResponse:
    return redirect(url_for("portal.index"))


@bp.get("/portal")
def index() -> BaseResponse | str:
    login = login_session.current()
    principal = load_principal(db.session(), login)
    if login is None or principal is None:
        return redirect(url_for("auth.login"))
    if principal.must_change_password:
        return redirect(url_for("auth.change_password"))
    entries = []
    for client in login_clients(db.session()):
        identities = eligible_identities(db.session(), principal, client=client)
        url = entry_url(client, principal)
        if identities and url:
            entries.append(PortalEntry(client=client, identities=identities, url=url))
    return render_template("portal/index.html", principal=principal, entries=entries)
