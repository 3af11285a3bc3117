"""The demo relying party (clients.maintenance_fund) against a tiny fake provider on loopback.

The fake provider is a real HTTP server on 127.0.0.1 for the calls the RP's Authlib client makes
(discovery, JWKS, token); the browser's trip through /authorize is played with the fake
provider's own Flask test client. It signs ES256 ID tokens with a key made per test session,
checks client_secret_basic and PKCE S256 like a real provider, and rotates refresh tokens.

It also answers the management API (/api/v1/org/) the 系统管理 menus call, with bearer tokens it
issued and RFC 9457 problem details, like the real one (whose own tests are in
tests/integration/api/); tests/browser/test_console_journeys.py runs the menus against the real
provider.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask, jsonify, redirect, request
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from clients.maintenance_fund import create_app
from clients.maintenance_fund.config import Config, ConfigError
from clients.maintenance_fund.errors import MESSAGES

CLIENT_ID = "maintenance-fund"
CLIENT_SECRET = "s3cret-for-tests"
RP_BASE = "http://127.0.0.1:5001"
KID = "test-es256"
API_SCOPE = "openid profile phone org.operators org.reviews"
MISMATCH = "您填写的身份信息与手机号认证失败，请确认信息是否填写正确。"
CLAIMS = {
    "sub": "acct-42",
    "name": "张三",
    "org": {"id": "org-7", "uscc": "91310000MA1FL4CT3X", "name": "上海某某工程造价咨询有限公司"},
    "org_type": "cost_consulting",
    "role": "org_admin",
    "amr": ["hwk", "sc"],
    "sid": "sid-1",
}


def es256_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": KID, "alg": "ES256", "use": "sig"})


@dataclass
class FakeProvider:
    """State of the fake OP; tests tweak ``id_token_overrides`` and friends before a flow."""

    key: ECKey
    issuer: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    metadata_overrides: dict[str, Any] = field(default_factory=dict)
    signing_key: ECKey | None = None
    omit_id_token: bool = False
    app: Flask | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    access_tokens: set[str] = field(default_factory=set)
    operators: dict[int, dict[str, Any]] = field(default_factory=dict)
    join_requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    api_requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.access_tokens.clear()
        self.operators.clear()
        self.join_requests.clear()
        self.api_requests.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.authorize_requests.clear()
        self.token_requests.clear()
        self.id_token_overrides.clear()
        self.metadata_overrides.clear()
        self.signing_key = None
        self.omit_id_token = False

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "end_session_endpoint": self.issuer + "/end-session",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
            **self.metadata_overrides,
        }

    def id_token(self, *, access_token: str, nonce: str | None) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode()).digest()[:16]
        claims: dict[str, Any] = {
            **CLAIMS,
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "at_hash": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.id_token_overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        header = {"alg": "ES256", "kid": KID, "typ": "JWT"}
        return jwt.encode(header, claims, self.signing_key or self.key)

    def issue(self, *, nonce: str | None) -> dict[str, Any]:
        access_token, refresh_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.refresh_tokens.add(refresh_token)
        self.access_tokens.add(access_token)
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": refresh_token,
            "scope": API_SCOPE,
        }
        if not self.omit_id_token:
            body["id_token"] = self.id_token(access_token=access_token, nonce=nonce)
        return body


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_error(error: str, status: int = 400) -> Any:
    return jsonify(error=error), status


def make_provider_app(op: FakeProvider) -> Flask:
    app = Flask("fake_op")

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify(op.metadata())

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(KeySet([op.key]).as_dict(private=False))

    @app.get("/authorize")
    def authorize() -> Any:
        args = request.args.to_dict()
        op.authorize_requests.append(args)
        code = secrets.token_urlsafe(12)
        op.codes[code] = args
        query = urlencode({"code": code, "state": args["state"], "iss": op.issuer})
        return redirect(f"{args['redirect_uri']}?{query}")

    @app.post("/token")
    def token() -> Any:
        form = request.form.to_dict()
        auth = request.authorization
        with op.lock:
            op.token_requests.append(
                {"form": form, "auth": auth and (auth.username, auth.password)}
            )
            if not auth or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
                return token_error("invalid_client", 401)
            if form.get("grant_type") == "authorization_code":
                return code_grant(form)
            if form.get("grant_type") == "refresh_token":
                return refresh_grant(form)
            return token_error("unsupported_grant_type")

    def code_grant(form: dict[str, str]) -> Any:
        request_args = op.codes.pop(form.get("code", ""), None)
        if request_args is None or request_args["redirect_uri"] != form.get("redirect_uri"):
            return token_error("invalid_grant")
        if s256(form.get("code_verifier", "")) != request_args.get("code_challenge"):
            return token_error("invalid_grant")
        return jsonify(op.issue(nonce=request_args.get("nonce")))

    def refresh_grant(form: dict[str, str]) -> Any:
        presented = form.get("refresh_token", "")
        if presented not in op.refresh_tokens:
            return token_error("invalid_grant")
        op.refresh_tokens.discard(presented)  # rotation: each refresh token works once
        return jsonify(op.issue(nonce=None))

    add_management_api(app, op)
    return app


def problem(status: int, code: str, detail: str, **headers: str) -> Any:
    body = {
        "type": "about:blank",
        "title": "Error",
        "status": status,
        "detail": detail,
        "code": code,
    }
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    response.headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return response


def add_management_api(app: Flask, op: FakeProvider) -> None:
    """The management API as far as the RP's menus use it, backed by ``op``'s dicts."""
    api = "/api/v1/org"

    @app.before_request
    def check_bearer() -> Any:
        if not request.path.startswith(api):
            return None
        auth = request.headers.get("Authorization", "")
        op.api_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(),
                "json": request.get_json(silent=True),
                "token": auth.removeprefix("Bearer "),
            }
        )
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in op.access_tokens:
            challenge = 'Bearer error="invalid_token", scope="org.operators"'
            return problem(401, "invalid_token", "访问令牌无效或已过期", WWW_Authenticate=challenge)
        return None

    def operator_or_404(ident: int) -> dict[str, Any]:
        if ident not in op.operators:
            from werkzeug.exceptions import NotFound

            raise NotFound()
        return op.operators[ident]

    @app.errorhandler(404)
    def not_found(_error: Exception) -> Any:
        return problem(404, "operator_not_found", "操作员不存在")

    @app.get(f"{api}/operators")
    def list_operators() -> Any:
        items = [
            {k: v for k, v in o.items() if k not in ("phone", "updated_at", "deleted_at")}
            for o in reversed(op.operators.values())
            if o["status"] != "deleted" or request.args.get("status") == "deleted"
        ]
        return jsonify(items=items, page=1, per_page=20, total=len(items), pages=1)

    @app.post(f"{api}/operators")
    def add_operator() -> Any:
        body = request.get_json()
        if body.get("name") == "错配":
            return problem(400, "realname_mismatch", MISMATCH)
        ident = len(op.operators) + 1
        op.operators[ident] = fake_operator(ident, body["name"], body["phone"])
        response = jsonify(operator=op.operators[ident], initial_password_sent=True)
        response.status_code = 201
        return response

    @app.get(f"{api}/operators/<int:ident>")
    def get_operator(ident: int) -> Any:
        return jsonify(operator_or_404(ident))

    @app.patch(f"{api}/operators/<int:ident>")
    def update_operator(ident: int) -> Any:
        operator = operator_or_404(ident)
        operator.update(request.get_json())
        return jsonify(operator)

    @app.delete(f"{api}/operators/<int:ident>")
    def delete_operator(ident: int) -> Any:
        operator = operator_or_404(ident)
        if operator["status"] == "deleted":
            return problem(409, "operator_deleted", "该操作员已删除")
        operator["status"] = "deleted"
        return jsonify(operator)

    @app.get(f"{api}/reviews")
    def list_reviews() -> Any:
        status = request.args.get("status", "pending")
        items = [r for r in op.join_requests.values() if status in ("all", r["status"])]
        return jsonify(items=items, page=1, per_page=20, total=len(items), pages=1)

    @app.get(f"{api}/reviews/<int:ident>")
    def get_review(ident: int) -> Any:
        return jsonify(op.join_requests[ident])

    @app.post(f"{api}/reviews/<int:ident>/<action>")
    def decide(ident: int, action: str) -> Any:
        row = op.join_requests[ident]
        if action == "reject":
            reason = (request.get_json() or {}).get("reason", "")
            if not reason:
                return problem(400, "invalid_join_request", "请填写驳回原因")
            row.update(status="rejected", reason=reason)
            return jsonify(row)
        row["status"] = "approved"
        operator = fake_operator(len(op.operators) + 1, row["name"], row["phone"])
        op.operators[operator["id"]] = operator
        return jsonify(operator=operator, initial_password_sent=True)


def fake_operator(ident: int, name: str, phone: str) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "phone": phone,
        "masked_phone": phone[:3] + "****" + phone[-4:],
        "status": "active",
        "created_by": "org_admin:7",
        "created_at": "2025-03-01T02:30:00+00:00",
        "last_login_at": None,
        "updated_at": None,
        "deleted_at": None,
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    op = FakeProvider(key=es256_key())
    app = op.app = make_provider_app(op)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    op.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield op
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def op(provider: FakeProvider) -> FakeProvider:
    provider.reset()
    return provider


@pytest.fixture
def rp_config(op: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Config:
    # create_app sets this process-wide variable for a loopback issuer; monkeypatch puts the
    # original value back so provider tests in the same process are not affected.
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    return Config(
        issuer=op.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=RP_BASE,
        secret_key="test-secret-key",
    )


@pytest.fixture
def rp(rp_config: Config) -> FlaskClient:
    return create_app(rp_config).test_client()


# --- helpers -----------------------------------------------------------------------------------


def local(url: str) -> str:
    """The path and query of an RP URL, for the RP's test client."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def authorize(op: FakeProvider, authorization_url: str) -> str:
    """The browser's visit to /authorize; returns the callback URL the provider redirects to."""
    assert op.app is not None
    response = op.app.test_client().get(local(authorization_url))
    assert response.status_code == 302
    return response.headers["Location"]


def log_in(rp: FlaskClient, op: FakeProvider, *, login_url: str = "/login") -> TestResponse:
    """Run the whole code flow and return the RP's response to the callback."""
    start = rp.get(login_url)
    assert start.status_code == 302, start.get_data(as_text=True)
    return rp.get(local(authorize(op, start.headers["Location"])))


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">(.*?)</', html, re.S)
    assert match, f"no element #{element_id}"
    return match.group(1).strip()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def stored_login(rp: FlaskClient) -> dict[str, Any] | None:
    with rp.session_transaction() as session:
        return session.get("login")


def assert_error_page(response: TestResponse, code: str, status: int = 400) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == status, html
    assert text_of(html, "error-code") == code
    assert 'id="home-link"' in html
    return html


# --- login ------------------------------------------------------------------------------------


def test_home_logged_out_offers_login(rp: FlaskClient) -> None:
    response = rp.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "上海市房屋维修资金管理系统" in html
    assert re.search(r'href="/login">登录</a>', html)
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_login_sends_code_flow_with_pkce_s256_and_nonce(rp: FlaskClient, op: FakeProvider) -> None:
    response = rp.get("/login")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(op.issuer + "/authorize?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == RP_BASE + "/callback"
    assert params["scope"] == "openid profile phone org.operators org.reviews"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["nonce"] and params["state"]


def test_home_offers_organisation_registration_as_prompt_create(
    rp: FlaskClient, op: FakeProvider
) -> None:
    home = rp.get("/").get_data(as_text=True)
    assert text_of(home, "register-button") == "维修资金业务办理组织机构注册"

    response = rp.get("/register")

    assert response.status_code == 302
    params = query(response.headers["Location"])
    assert params["prompt"] == "create"
    assert params["code_challenge_method"] == "S256" and params["state"]
    assert "prompt" not in query(rp.get("/login").headers["Location"])


def test_login_shows_name_org_and_role(rp: FlaskClient, op: FakeProvider) -> None:
    callback = log_in(rp, op)

    assert callback.status_code == 302
    assert callback.headers["Location"] == "/"
    form = op.token_requests[-1]["form"]
    assert op.token_requests[-1]["auth"] == (CLIENT_ID, CLIENT_SECRET)  # client_secret_basic
    assert form["grant_type"] == "authorization_code"
    assert "client_secret" not in form
    html = rp.get("/").get_data(as_text=True)
    assert text_of(html, "user-name") == "张三"
    assert text_of(html, "org-name") == "上海某某工程造价咨询有限公司"
    assert text_of(html, "org-type") == "工程造价咨询单位"
    assert text_of(html, "role") == "企业管理员"
    assert "<code>hwk</code>" in html and "<code>sc</code>" in html
    assert "北京时间" in text_of(html, "token-expiry")
    assert "刷新令牌" in html and "退出登录" in html
    login = stored_login(rp)
    assert login is not None
    assert login["userinfo"]["sub"] == "acct-42"
    assert login["refresh_token"] in op.refresh_tokens
    assert isinstance(login["expires_at"], int)


BAD_ID_TOKENS = {
    "wrong nonce": {"nonce": "not-the-nonce-we-sent"},
    "missing nonce": {"nonce": None},
    "wrong iss": {"iss": "https://evil.example"},
    "wrong aud with our azp": {"aud": "someone-else", "azp": CLIENT_ID},
    "expired": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
}


@pytest.mark.parametrize("overrides", BAD_ID_TOKENS.values(), ids=BAD_ID_TOKENS.keys())
def test_callback_rejects_bad_id_token(
    rp: FlaskClient, op: FakeProvider, overrides: dict[str, Any]
) -> None:
    op.id_token_overrides.update(overrides)

    html = assert_error_page(log_in(rp, op), "invalid_id_token")

    assert "ID 令牌校验失败" in html
    assert stored_login(rp) is None
    assert "user-name" not in rp.get("/").get_data(as_text=True)


def test_callback_rejects_id_token_signed_by_another_key(rp: FlaskClient, op: FakeProvider) -> None:
    op.signing_key = es256_key()  # same kid, different key

    assert_error_page(log_in(rp, op), "invalid_id_token")
    assert stored_login(rp) is None


def test_callback_requires_an_id_token(rp: FlaskClient, op: FakeProvider) -> None:
    op.omit_id_token = True

    assert_error_page(log_in(rp, op), "missing_id_token")
    assert stored_login(rp) is None


def test_callback_rejects_response_from_another_issuer(rp: FlaskClient, op: FakeProvider) -> None:
    start = rp.get("/login")
    callback = authorize(op, start.headers["Location"]).replace(
        "iss=http", "iss=https%3A%2F%2Fevil.example%2F"
    )

    assert_error_page(rp.get(local(callback)), "issuer_mismatch")
    assert op.token_requests == []  # RFC 9207: the code never left the browser
    assert stored_login(rp) is None


def test_callback_shows_provider_error(rp: FlaskClient, op: FakeProvider) -> None:
    state = query(rp.get("/login").headers["Location"])["state"]
    params = urlencode(
        {
            "error": "access_denied",
            "error_description": "用户取消",
            "state": state,
            "iss": op.issuer,
        }
    )

    html = assert_error_page(rp.get(f"/callback?{params}"), "access_denied")

    assert text_of(html, "error-message") == MESSAGES["access_denied"]
    assert "用户取消" not in html  # the provider's description goes to the log only
    assert op.token_requests == []
    assert stored_login(rp) is None


STANDARD_ERRORS = [  # RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
]


@pytest.mark.parametrize("code", STANDARD_ERRORS)
def test_every_standard_error_is_told_in_a_sentence(
    rp: FlaskClient, op: FakeProvider, code: str
) -> None:
    state = query(rp.get("/login").headers["Location"])["state"]
    raw = "raw technical description <b>x</b>"
    params = urlencode({"error": code, "error_description": raw, "state": state, "iss": op.issuer})

    html = assert_error_page(rp.get(f"/callback?{params}"), code)

    assert text_of(html, "error-message") == MESSAGES[code]
    assert "raw technical description" not in html
    assert 'id="login-again"' in html or code not in {"access_denied", "login_required"}


def test_callback_rejects_unknown_state(rp: FlaskClient, op: FakeProvider) -> None:
    rp.get("/login")
    params = urlencode({"code": "c", "state": "forged", "iss": op.issuer})

    assert_error_page(rp.get(f"/callback?{params}"), "mismatching_state")
    assert op.token_requests == []


def test_login_refused_when_discovery_names_another_issuer(
    rp: FlaskClient, op: FakeProvider
) -> None:
    op.metadata_overrides["issuer"] = "https://evil.example"

    assert_error_page(rp.get("/login"), "discovery_mismatch", status=502)


def test_unreachable_provider_gets_an_error_page(rp_config: Config) -> None:
    closed = Config(
        issuer="http://127.0.0.1:9", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )  # discard port: nothing listens

    response = create_app(closed).test_client().get("/login")

    assert_error_page(response, "provider_unreachable", status=502)


# --- third-party initiated login (OIDC Core §4) -------------------------------------------------


def test_third_party_login_passes_login_hint_and_returns_to_target(
    rp: FlaskClient, op: FakeProvider
) -> None:
    target = RP_BASE + "/?from=portal"
    login_url = "/login?" + urlencode(
        {"iss": op.issuer, "login_hint": "13800000000", "target_link_uri": target}
    )

    callback = log_in(rp, op, login_url=login_url)

    assert op.authorize_requests[-1]["login_hint"] == "13800000000"
    assert callback.status_code == 302
    assert callback.headers["Location"] == target


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"iss": "https://evil.example", "login_hint": "x"}, "untrusted_initiator"),
        ({"iss": "{issuer}", "target_link_uri": "https://evil.example/"}, "invalid_target"),
    ],
    ids=["foreign iss", "foreign target_link_uri"],
)
def test_third_party_login_refused(
    rp: FlaskClient, op: FakeProvider, params: dict[str, str], code: str
) -> None:
    params = {name: value.format(issuer=op.issuer) for name, value in params.items()}

    assert_error_page(rp.get("/login?" + urlencode(params)), code)
    assert op.authorize_requests == []


# --- refresh ----------------------------------------------------------------------------------


def test_refresh_replaces_tokens(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    before = stored_login(rp)
    assert before is not None

    response = rp.post("/refresh", data={"csrf_token": csrf_of(rp.get("/").get_data(as_text=True))})

    assert response.status_code == 302
    form = op.token_requests[-1]["form"]
    assert form == {"grant_type": "refresh_token", "refresh_token": before["refresh_token"]}
    after = stored_login(rp)
    assert after is not None
    for name in ("access_token", "refresh_token", "id_token"):
        assert after[name] != before[name]
    assert op.refresh_tokens == {after["refresh_token"]}
    assert text_of(rp.get("/").get_data(as_text=True), "user-name") == "张三"


def test_refresh_with_rejected_token_ends_login(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    csrf = csrf_of(rp.get("/").get_data(as_text=True))
    op.refresh_tokens.clear()  # e.g. revoked by logout elsewhere or by reuse detection

    html = assert_error_page(rp.post("/refresh", data={"csrf_token": csrf}), "invalid_grant", 401)

    assert "需要重新登录" in html
    assert stored_login(rp) is None


def test_refresh_without_csrf_token_is_refused(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    before = stored_login(rp)
    requests_before = len(op.token_requests)

    assert_error_page(rp.post("/refresh", data={"csrf_token": "wrong"}), "csrf_failed")
    assert len(op.token_requests) == requests_before
    assert stored_login(rp) == before


# --- logout -----------------------------------------------------------------------------------


def test_logout_redirects_to_end_session_and_checks_state(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    login = stored_login(rp)
    assert login is not None
    csrf = csrf_of(rp.get("/").get_data(as_text=True))

    response = rp.post("/logout", data={"csrf_token": csrf})

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(op.issuer + "/end-session?")
    params = query(location)
    assert params["id_token_hint"] == login["id_token"]
    assert params["post_logout_redirect_uri"] == RP_BASE + "/logged-out"
    assert params["client_id"] == CLIENT_ID
    assert params["state"]
    assert stored_login(rp) is None
    assert_error_page(rp.get("/logged-out?state=forged"), "invalid_logout_state")
    done = rp.get("/logged-out?" + urlencode({"state": params["state"]}))
    assert done.status_code == 200
    assert "您已安全退出" in done.get_data(as_text=True)
    assert_error_page(
        rp.get("/logged-out?" + urlencode({"state": params["state"]})), "invalid_logout_state"
    )


def test_logout_without_csrf_token_keeps_session(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)

    assert_error_page(rp.post("/logout"), "csrf_failed")
    assert stored_login(rp) is not None


# --- 【公共部分-系统管理】: 操作员管理 and 用户审核 through the management API -------------------


def html_of(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash" role="status">([^<]*)</p>', html)


def post_page(rp: FlaskClient, url: str, data: dict[str, str]) -> TestResponse:
    """GET the page for the CSRF token, then POST ``data`` to it."""
    page = rp.get(url)
    assert page.status_code == 200, html_of(page)
    return rp.post(url, data={"csrf_token": csrf_of(html_of(page)), **data})


def test_org_admin_sees_the_system_menus(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)

    html = html_of(rp.get("/"))

    assert "公共部分-系统管理" in html
    assert 'id="menu-operators" href="/system/operators">操作员管理</a>' in html
    assert 'id="menu-reviews" href="/system/reviews">用户审核</a>' in html


def test_operators_see_no_system_menus_and_are_refused(rp: FlaskClient, op: FakeProvider) -> None:
    op.id_token_overrides["role"] = "operator"
    log_in(rp, op)

    assert "公共部分-系统管理" not in html_of(rp.get("/"))
    html = assert_error_page(rp.get("/system/operators"), "org_admin_required", 403)
    assert "仅企业管理员可以使用系统管理功能" in html
    assert op.api_requests == []


def test_the_menus_need_a_login(rp: FlaskClient, op: FakeProvider) -> None:
    response = rp.get("/system/reviews")

    assert (response.status_code, response.headers["Location"]) == (302, "/login")
    assert op.api_requests == []


def test_list_calls_the_api_with_the_users_token_and_filters(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    op.operators[1] = fake_operator(1, "王五", "13700137000")
    login = stored_login(rp)
    assert login is not None

    html = html_of(rp.get("/system/operators?query=王&status=active&page=2"))

    (call,) = op.api_requests
    assert (call["method"], call["path"]) == ("GET", "/api/v1/org/operators")
    assert call["args"] == {"query": "王", "status": "active", "page": "2"}
    assert call["token"] == login["access_token"]
    assert '<tr id="operator-1">' in html
    assert "137****7000" in html and "13700137000" not in html
    assert "2025-03-01 10:30" in html  # Beijing time
    for label in (">增加<", ">查询<", ">修改<", ">删除<"):
        assert label in html


def test_add_sends_name_and_phone_and_shows_the_new_operator(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)

    saved = post_page(rp, "/system/operators/new", {"name": " 王五 ", "phone": "13700137000"})

    assert (saved.status_code, saved.headers["Location"]) == (302, "/system/operators/1")
    assert op.api_requests[-1]["json"] == {"name": "王五", "phone": "13700137000"}
    detail = html_of(rp.get("/system/operators/1"))
    assert flashes(detail) == ["保存成功", "初始密码已通过短信发送"]
    assert text_of(detail, "operator-phone") == "13700137000"
    assert text_of(detail, "operator-created-by") == "企业管理员"


def test_add_shows_the_providers_refusal_next_to_the_form(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)

    refused = post_page(rp, "/system/operators/new", {"name": "错配", "phone": "13700137000"})

    html = html_of(refused)
    assert refused.status_code == 400
    assert text_of(html, "form-error") == MISMATCH
    assert 'data-code="realname_mismatch"' in html
    assert 'value="错配"' in html and 'value="13700137000"' in html
    assert op.operators == {}


def test_forms_need_the_csrf_token(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    op.operators[1] = fake_operator(1, "王五", "13700137000")

    for url in ("/system/operators/new", "/system/operators/1/delete", "/system/operators/1/edit"):
        assert_error_page(rp.post(url, data={"name": "x", "phone": "1"}), "csrf_failed")
    assert op.api_requests == []
    assert op.operators[1]["status"] == "active"


def test_edit_sends_only_phone_and_status(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    op.operators[1] = fake_operator(1, "王五", "13700137000")
    page = html_of(rp.get("/system/operators/1/edit"))
    form = page[page.index('<form method="post"') : page.index("</form>")]
    assert sorted(set(re.findall(r'name="([a-z_]+)"', form))) == ["csrf_token", "phone", "status"]

    saved = rp.post(
        "/system/operators/1/edit",
        data={
            "csrf_token": csrf_of(page),
            "phone": "13700137001",
            "status": "disabled",
            "name": "x",
        },
    )

    assert (saved.status_code, saved.headers["Location"]) == (302, "/system/operators/1")
    assert op.api_requests[-1]["method"] == "PATCH"
    assert op.api_requests[-1]["json"] == {"phone": "13700137001", "status": "disabled"}
    assert text_of(html_of(rp.get("/system/operators/1")), "operator-status") == "停用"


def test_delete_asks_for_confirmation_then_deletes(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    op.operators[1] = fake_operator(1, "王五", "13700137000")

    page = html_of(rp.get("/system/operators/1/delete"))
    assert "确定删除操作员 王五（137****7000）吗？" in page
    assert op.operators[1]["status"] == "active"
    deleted = rp.post("/system/operators/1/delete", data={"csrf_token": csrf_of(page)})

    assert (deleted.status_code, deleted.headers["Location"]) == (302, "/system/operators")
    assert op.api_requests[-1]["method"] == "DELETE"
    assert op.operators[1]["status"] == "deleted"
    listing = html_of(rp.get("/system/operators"))
    assert flashes(listing) == ["删除成功"]
    assert "operator-1" not in listing
    again = rp.post("/system/operators/1/delete", data={"csrf_token": csrf_of(page)})
    assert again.status_code == 409
    assert text_of(html_of(again), "form-error") == "该操作员已删除"


def test_unknown_operator_shows_the_providers_message(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)

    html = assert_error_page(rp.get("/system/operators/9"), "operator_not_found", 404)

    assert text_of(html, "error-message") == "操作员不存在"


def test_reviews_list_approve_and_reject(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    for ident, name in ((1, "孙八"), (2, "周九")):
        op.join_requests[ident] = {
            "id": ident,
            "name": name,
            "phone": f"1330013300{ident}",
            "masked_phone": f"133****300{ident}",
            "status": "pending",
            "reason": "",
            "created_at": "2025-03-01T02:30:00+00:00",
            "expires_at": "2025-03-08T02:30:00+00:00",
            "decided_at": None,
            "decided_by": "",
        }

    listing = html_of(rp.get("/system/reviews"))
    assert '<tr id="join-request-1">' in listing and '<tr id="join-request-2">' in listing
    assert op.api_requests[-1]["args"] == {"status": "pending", "page": "1"}
    approved = post_page(rp, "/system/reviews/1/approve", {})
    assert (approved.status_code, approved.headers["Location"]) == (302, "/system/reviews")
    assert flashes(html_of(rp.get("/system/reviews"))) == [
        "已通过，操作员账号已开通",
        "初始密码已通过短信发送",
    ]
    refused = post_page(rp, "/system/reviews/2/reject", {"reason": " "})
    assert refused.status_code == 400
    assert text_of(html_of(refused), "form-error") == "请填写驳回原因"
    rejected = post_page(rp, "/system/reviews/2/reject", {"reason": "信息不符"})
    assert rejected.status_code == 302
    assert op.api_requests[-1]["json"] == {"reason": "信息不符"}
    assert [r["status"] for r in op.join_requests.values()] == ["approved", "rejected"]
    assert "孙八" in html_of(rp.get("/system/operators"))


def test_an_expired_access_token_is_refreshed_once(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    before = stored_login(rp)
    assert before is not None
    op.access_tokens.clear()  # the provider says: invalid_token (expired)

    response = rp.get("/system/operators")

    assert response.status_code == 200
    first, second = op.api_requests
    assert first["token"] == before["access_token"]
    after = stored_login(rp)
    assert after is not None
    assert second["token"] == after["access_token"] != before["access_token"]
    assert op.token_requests[-1]["form"]["grant_type"] == "refresh_token"


def test_when_the_refresh_fails_too_the_user_must_log_in_again(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    op.access_tokens.clear()
    op.refresh_tokens.clear()  # e.g. the org admin's tokens were revoked

    html = assert_error_page(rp.get("/system/operators"), "login_expired", 401)

    assert "需要重新登录" in html
    assert 'href="/login">重新登录</a>' in html
    assert stored_login(rp) is None
    assert len(op.api_requests) == 1


def test_a_token_refused_after_a_refresh_is_not_refreshed_again(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    op.access_tokens.clear()
    original_issue = op.issue

    def issue_unusable(*, nonce: str | None) -> dict[str, Any]:
        body = original_issue(nonce=nonce)
        op.access_tokens.discard(body["access_token"])
        return body

    op.issue = issue_unusable  # type: ignore[method-assign]
    try:
        assert_error_page(rp.get("/system/operators"), "login_expired", 401)
    finally:
        op.issue = original_issue  # type: ignore[method-assign]

    assert len(op.api_requests) == 2
    assert [r["form"]["grant_type"] for r in op.token_requests].count("refresh_token") == 1
    assert stored_login(rp) is None


# --- configuration ----------------------------------------------------------------------------


def test_insecure_transport_only_for_loopback_http(
    rp_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_app(Config(issuer="https://login.example.cn", client_id="c", client_secret="s"))
    assert "AUTHLIB_INSECURE_TRANSPORT" not in os.environ
    with pytest.raises(ConfigError, match="RP_ISSUER"):
        Config(issuer="http://login.example.cn", client_id="c", client_secret="s")

    create_app(rp_config)
    assert os.environ["AUTHLIB_INSECURE_TRANSPORT"] == "1"


def test_config_from_env_reads_client_file(tmp_path: Path) -> None:
    path = tmp_path / "client.json"
    path.write_text('{"client_id": "from-file", "client_secret": "file-secret"}', encoding="utf-8")

    config = Config.from_env({"RP_CLIENT_FILE": str(path), "RP_SECRET_KEY": "k"})

    assert (config.client_id, config.client_secret) == ("from-file", "file-secret")
    assert (config.issuer, config.base_url) == ("http://127.0.0.1:5000", "http://127.0.0.1:5001")
    assert config.redirect_uri == "http://127.0.0.1:5001/callback"
    assert "file-secret" not in repr(config)


def test_config_env_credentials_win_and_missing_ones_are_reported(tmp_path: Path) -> None:
    env = {
        "RP_CLIENT_ID": "env-id",
        "RP_CLIENT_SECRET": "env-secret",
        "RP_CLIENT_FILE": "/nonexistent",
    }
    assert Config.from_env(env).client_id == "env-id"
    with pytest.raises(ConfigError, match="RP_CLIENT_FILE"):
        Config.from_env({})


# --- back-channel logout ------------------------------------------------------------------------

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token(op: FakeProvider, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(8),
        "sub": CLAIMS["sub"],
        "sid": CLAIMS["sid"],
        "events": {LOGOUT_EVENT: {}},
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    header = {"alg": "ES256", "kid": KID, "typ": "logout+jwt"}
    return jwt.encode(header, claims, op.key)


def test_backchannel_logout_ends_the_local_session(rp: FlaskClient, op: FakeProvider) -> None:
    log_in(rp, op)
    assert stored_login(rp) is not None

    told = rp.post("/backchannel-logout", data={"logout_token": logout_token(op)})

    assert told.status_code == 200
    assert told.headers["Cache-Control"] == "no-store"
    page = rp.get("/").get_data(as_text=True)
    assert 'id="login-button"' in page
    assert "您在统一认证登录平台的登录已结束" in page
    assert stored_login(rp) is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "another-client"}, "aud"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": int(time.time()) - 600}, "exp"),
        ({"events": {"urn:other": {}}}, "event"),
        ({"events": None}, "events"),
        ({"sid": None}, "sid"),
        ({"jti": None}, "jti"),
        ({"nonce": "n-1"}, "nonce"),
    ],
    ids=["aud", "iss", "expired", "other-event", "no-events", "no-sid", "no-jti", "nonce"],
)
def test_backchannel_logout_refuses_bad_tokens_and_ends_nothing(
    rp: FlaskClient, op: FakeProvider, overrides: dict[str, Any], reason: str
) -> None:
    log_in(rp, op)

    told = rp.post("/backchannel-logout", data={"logout_token": logout_token(op, **overrides)})

    assert told.status_code == 400
    assert told.json is not None and told.json["error"] == "invalid_request"
    assert stored_login(rp) is not None
    assert 'id="logout-button"' in rp.get("/").get_data(as_text=True)


def test_backchannel_logout_refuses_a_foreign_signature_and_a_replay(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    op.key, genuine = es256_key(), op.key
    forged = logout_token(op)
    op.key = genuine
    assert rp.post("/backchannel-logout", data={"logout_token": forged}).status_code == 400
    assert stored_login(rp) is not None

    token = logout_token(op, sid="sid-other")
    assert rp.post("/backchannel-logout", data={"logout_token": token}).status_code == 200
    assert rp.post("/backchannel-logout", data={"logout_token": token}).status_code == 400
    assert stored_login(rp) is not None  # another session ended; ours goes on


# --- front-channel logout -----------------------------------------------------------------------


def test_frontchannel_logout_ends_the_local_session_of_that_sid(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)
    assert stored_login(rp) is not None

    told = rp.get("/frontchannel-logout", query_string={"iss": op.issuer, "sid": CLAIMS["sid"]})

    assert told.status_code == 200
    assert "no-store" in told.headers["Cache-Control"]
    assert told.headers["Content-Security-Policy"].endswith(f"frame-ancestors {op.issuer}")
    assert "X-Frame-Options" not in told.headers  # the provider's page frames it
    assert stored_login(rp) is None
    page = rp.get("/").get_data(as_text=True)
    assert 'id="login-button"' in page
    assert "您在统一认证登录平台的登录已结束" in page


@pytest.mark.parametrize(
    "params",
    [
        {"iss": "https://evil.example", "sid": CLAIMS["sid"]},
        {"sid": CLAIMS["sid"]},
        {"iss": "http://127.0.0.1:5000"},
    ],
    ids=["other-iss", "no-iss", "no-sid"],
)
def test_frontchannel_logout_refuses_a_bad_request_and_ends_nothing(
    rp: FlaskClient, op: FakeProvider, params: dict[str, str]
) -> None:
    log_in(rp, op)
    params = {k: (op.issuer if v == "http://127.0.0.1:5000" else v) for k, v in params.items()}

    told = rp.get("/frontchannel-logout", query_string=params)

    assert told.status_code == 400
    assert stored_login(rp) is not None
    assert 'id="user-name"' in rp.get("/").get_data(as_text=True)  # nothing recorded


def test_frontchannel_logout_without_the_cookie_ends_the_session_at_its_next_request(
    rp: FlaskClient, op: FakeProvider
) -> None:
    """A browser that withholds cookies from a framed site still ends the session: the sid is
    recorded as ended, and the session holding it is cleared when it next comes."""
    log_in(rp, op)
    frame = rp.application.test_client()  # no cookies: the frame's request in such a browser

    told = frame.get("/frontchannel-logout", query_string={"iss": op.issuer, "sid": CLAIMS["sid"]})

    assert told.status_code == 200
    assert stored_login(rp) is not None  # not yet: this browser's cookie was not sent
    page = rp.get("/").get_data(as_text=True)
    assert 'id="login-button"' in page
    assert "您在统一认证登录平台的登录已结束" in page
    assert stored_login(rp) is None


def test_frontchannel_logout_of_another_sid_leaves_this_login(
    rp: FlaskClient, op: FakeProvider
) -> None:
    log_in(rp, op)

    told = rp.get("/frontchannel-logout", query_string={"iss": op.issuer, "sid": "other-sid"})

    assert told.status_code == 200
    assert stored_login(rp) is not None
    assert 'id="user-name"' in rp.get("/").get_data(as_text=True)
    assert rp.get("/").headers.get("X-Frame-Options") == "DENY"  # other pages stay unframed
