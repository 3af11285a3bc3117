"""Steps of the multi-instance tests: set-up through the control app, and the protocol as a
browser and a relying party drive it across instances."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from tests.conftest import RegisteredClient, make_operator, register, register_for
from tests.flows import (
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    login,
    query_of,
    token_request,
)
from tests.multi.harness import InstanceClient

PHONE = "13800138000"


def seed_operator_and_rp(control: Any) -> tuple[Any, RegisteredClient]:
    """The demo organisation registered for a confidential RP, and its operator 张三 (who has
    changed the initial password)."""
    from idp import db
    from idp.orgs.registration import add_org
    from tests.conftest import DEMO_USCC

    org = add_org(db.session(), uscc=DEMO_USCC, name="上海示例审计事务所有限公司", org_type="audit")
    db.session().commit()
    rp = register(
        control,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": ["https://rp.example/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid profile phone",
        },
    )
    register_for(org, rp.client_id)
    make_operator(org, name="张三", phone=PHONE, first_login=False)
    return org, rp


def start_authorization(client: InstanceClient, rp: RegisteredClient, pkce: Pkce) -> str:
    """GET /authorize without a login: the interaction id the login page continues."""
    response = client.get("/authorize?" + urlencode(authorize_params(rp.client_id, pkce)))
    assert response.status_code in (302, 303), response.text[:500]
    interaction = query_of(response.headers["Location"]).get("interaction")
    assert interaction, response.headers["Location"]
    return interaction


def log_in(client: InstanceClient, outbox: Any, *, interaction: str = "") -> str:
    """The operator's login on ``client``'s instance; where it continues."""
    response = login(client, outbox, phone=PHONE, password=PASSWORD, interaction=interaction)  # type: ignore[arg-type]
    assert response.status_code == 302, response.text[:800]
    return str(response.headers["Location"])


def follow(client: InstanceClient, location: str, *, max_hops: int = 8) -> dict[str, str]:
    """Follow the provider's redirects until one goes to the relying party: its query."""
    for _hop in range(max_hops):
        if location.startswith(REDIRECT_URI):
            return query_of(location)
        response = client.get(location)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
    raise AssertionError("too many redirects")


def redeem(client: InstanceClient, rp: RegisteredClient, code: str, verifier: str) -> Any:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    return token_request(client, data, auth=rp.auth)  # type: ignore[arg-type]


def refresh(client: InstanceClient, rp: RegisteredClient, refresh_token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(client, data, auth=rp.auth)  # type: ignore[arg-type]


def form_token(client: InstanceClient, path: str = "/login") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    return csrf_token(page.text)


def count_rows(model: type, *where: Any) -> int:
    """Committed rows, read in a session of their own."""
    from flask import current_app

    with current_app.extensions["idp.db"]() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audit_rows(action: str) -> list[tuple[str, str, str]]:
    """(actor, target, result) of each ``action`` event, oldest first."""
    from flask import current_app

    from idp.audit.models import AuditEvent

    with current_app.extensions["idp.db"]() as session:
        rows = session.execute(
            select(AuditEvent.actor, AuditEvent.target, AuditEvent.result)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(a, t, r) for a, t, r in rows]


def cert_login(
    issuer: InstanceClient,
    answerer: InstanceClient,
    pki: Any,
    *,
    leaf: str = "good_rsa",
    ts: int | None = None,
    nonce: str | None = None,
    keep_nonce: list[str] | None = None,
) -> Any:
    """A UKey login: the challenge from ``issuer``'s instance, the agent's signed answer (made
    as ``tests/pki.py`` makes it) posted to ``answerer``'s; ``nonce`` answers an old one."""
    from tests.multi.harness import ISSUER
    from tests.pki import signed_login

    token = form_token(issuer, "/login?method=cert")
    challenged = issuer.post("/login/cert/challenge", headers={"X-CSRFToken": token})
    assert challenged.status_code == 200, challenged.text
    nonce = nonce or challenged.json()["challenge"]
    if keep_nonce is not None:
        keep_nonce.append(nonce)
    signed = signed_login(pki[leaf], nonce=nonce, origin=ISSUER, ts=ts)
    return answerer.post("/login/cert", data={**signed.form(), "csrf_token": token})
