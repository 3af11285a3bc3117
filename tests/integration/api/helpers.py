"""How the management API tests get their tokens, and what they read from the answers.

Tokens are obtained as a relying party gets them: a real certificate (UKey) login of the org
admin with the test PKI (tests/pki.py, as in tests/integration/cert_login), then the code flow
with PKCE for a client registered with the API scopes. Operators log in with phone, password
and SMS code (tests/flows.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from tests.conftest import OTHER_ORG_NAME, OTHER_USCC
from tests.flows import (
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    login,
    token_request,
)
from tests.pki import (
    USCC,
    Leaf,
    TestPki,
    der_string,
    issue_leaf,
    org_subject,
    signed_login,
    uscc_extension,
)

ORIGIN = "http://localhost"  # the test issuer's origin, which the UKey payload names
API_SCOPE = "openid profile phone org.operators org.reviews"
PROBLEM = "application/problem+json"


def other_org_leaf(pki: TestPki) -> Leaf:
    """A UKey certificate of the second organisation (OTHER_USCC), from the test intermediate;
    made once per process and kept with the PKI's other leaves."""
    if "other_org" not in pki.leaves:
        pki.leaves["other_org"] = issue_leaf(
            pki.intermediate,
            "other_org",
            subject=org_subject(common_name=OTHER_ORG_NAME),
            extensions=[uscc_extension(der_string(OTHER_USCC))],
            crl_url=pki.server.crl_url(pki.intermediate.name),
            ocsp_url=pki.server.ocsp_url(pki.intermediate.name),
        )
    return pki["other_org"]


def ukey_login(client: FlaskClient, pki: TestPki, *, uscc: str = USCC) -> None:
    """The certificate login the login page does with the agent's answer."""
    leaf = pki["good_ec"] if uscc == USCC else other_org_leaf(pki)
    page = client.get("/login?method=cert")
    token = csrf_token(page.text)
    answer = client.post("/login/cert/challenge", headers={"X-CSRFToken": token})
    assert answer.status_code == 200, answer.text
    signed = signed_login(leaf, nonce=answer.json["challenge"], origin=ORIGIN)
    response = client.post("/login/cert", data={**signed.form(), "csrf_token": token})
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/portal", response.headers["Location"]


def code_flow(client: FlaskClient, client_id: str, secret: str, *, scope: str) -> dict[str, Any]:
    """Authorization code + PKCE with the browser's login session; the token response."""
    pkce = Pkce.new()
    result = follow_to_code(client, authorize_params(client_id, pkce, scope=scope))
    assert "code" in result, result
    response = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=(client_id, secret),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json
    return body


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def admin_tokens(
    client: FlaskClient, pki: TestPki, rp: Any, *, uscc: str = USCC, scope: str = API_SCOPE
) -> Tokens:
    ukey_login(client, pki, uscc=uscc)
    body = code_flow(client, rp.client_id, rp.secret, scope=scope)
    return Tokens(body["access_token"], body["refresh_token"])


def operator_tokens(
    client: FlaskClient, outbox: Any, rp: Any, *, phone: str, password: str
) -> Tokens:
    assert login(client, outbox, phone=phone, password=password).status_code == 302
    body = code_flow(client, rp.client_id, rp.secret, scope=API_SCOPE)
    return Tokens(body["access_token"], body["refresh_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(
    response: Any, status: int, code: str, detail: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem details answer with this status and code."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.mimetype == PROBLEM, response.mimetype
    body: dict[str, Any] = response.json
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"]
    if detail is not None:
        assert body["detail"] == detail, body
    return body
