"""The demo relying party (clients.maintenance_fund) against a tiny fake provider on loopback.

The fake provider is a real HTTP server on 127.0.0.1 for the calls the RP's Authlib client makes
(discovery, JWKS, token); the browser's trip through /authorize is played with the fake
provider's own Flask test client. It signs ES256 ID tokens with a key made per test session,
checks client_secret_basic and PKCE S256 like a real provider, and rotates refresh tokens.
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

CLIENT_ID = "maintenance-fund"
CLIENT_SECRET = "s3cret-for-tests"
RP_BASE = "http://127.0.0.1:5001"
KID = "test-es256"
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

    def reset(self) -> None:
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
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 600,
            "refresh_token": refresh_token,
            "scope": "openid profile phone",
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

    return app


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
    assert params["scope"] == "openid profile phone"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["nonce"] and params["state"]


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

    assert "登录请求被拒绝" in html and "用户取消" in html
    assert op.token_requests == []
    assert stored_login(rp) is None


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
