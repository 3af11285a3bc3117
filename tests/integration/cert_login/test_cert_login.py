"""Certificate (UKey) login through the provider's pages (docs/ukey-protocol.md §1 and §3)."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from idp import db
from idp.audit.models import AuditEvent
from idp.identity.models import (
    IdentityRegistration,
    Organisation,
    OrgCertificate,
    OrgIdentity,
    OrgType,
)
from idp.signing import published_keys
from tests.conftest import DEMO_USCC
from tests.flows import (
    REDIRECT_URI,
    Pkce,
    authorize_params,
    csrf_token,
    follow_to_code,
    query_of,
    token_request,
)
from tests.pki import TestPki, issue_leaf, shared_pki, signed_login, utcnow

ORIGIN = "http://localhost"


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return shared_pki()


@pytest.fixture
def settings_overrides(pki, tmp_path):
    return {"trust_dir": pki.write_trust_dir(tmp_path / "trust")}


def challenge(client) -> tuple[str, str]:
    page = client.get("/login?method=cert")
    token = csrf_token(page.text)
    response = client.post("/login/cert/challenge", headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.text
    assert response.json["expires_in"] == 120
    return response.json["challenge"], token


def cert_login(client, pki, leaf="good_rsa", **changes):
    nonce, token = challenge(client)
    signed = signed_login(
        pki[leaf],
        nonce=changes.pop("nonce", nonce),
        origin=changes.pop("origin", ORIGIN),
        **changes,
    )
    return client.post("/login/cert", data={**signed.form(), "csrf_token": token}), signed, token


def register_org(rp, *types: str) -> Organisation:
    org = Organisation(uscc=DEMO_USCC, name="上海示例审计事务所有限公司")
    for org_type in types:
        identity = OrgIdentity(org_type=OrgType(org_type))
        identity.registrations.append(IdentityRegistration(client_id=rp.client_id))
        org.identities.append(identity)
    db.session().add(org)
    db.session().commit()
    return org


def count(model) -> int:
    return db.session().scalar(select(func.count()).select_from(model))


def test_login_page_has_the_certificate_tab(client):
    page = client.get("/login?method=cert")
    assert "企业 Ukey 信息" in page.text
    assert 'data-agent-url="http://127.0.0.1:17443"' in page.text
    assert 'href="/ukey/agent"' in page.text
    assert 'id="ukey-pin"' in page.text
    assert 'name="pin"' not in page.text  # the PIN never goes to the provider
    agent_page = client.get("/ukey/agent")
    assert "客户端工具" in agent_page.text


def test_challenge_needs_csrf(client):
    assert client.post("/login/cert/challenge").status_code == 400


def test_unregistered_org_goes_to_registration(client, pki):
    response, _signed, _token = cert_login(client, pki)
    assert response.status_code == 302
    assert response.headers["Location"] == "/register"
    assert "idp_session=" in response.headers["Set-Cookie"]
    assert count(Organisation) == 0  # nothing is created by a login


@pytest.mark.parametrize("leaf", ["good_rsa", "good_ec", "good_sm2"])
def test_registered_org_admin_reaches_the_portal_and_the_certificate_is_remembered(
    client, pki, rp, leaf
):
    org = register_org(rp, "audit")
    response, _signed, _token = cert_login(client, pki, leaf)
    assert response.headers["Location"] == "/portal"
    remembered = db.session().scalars(select(OrgCertificate)).all()
    assert [c.org_id for c in remembered] == [org.id]
    assert remembered[0].fingerprint == hashlib.sha256(pki[leaf].der).hexdigest()


def test_registration_takes_the_organisation_name_only_from_the_certificates_o(client, pki, rp):
    """Without O the name field starts empty: the CN is a person's name in many certificates."""
    from tests.integration.orgs.helpers import input_value

    response, _signed, _token = cert_login(client, pki, "no_org_name")
    assert response.headers["Location"] == "/register"
    page = client.get("/register/audit/new")
    assert page.status_code == 200
    assert input_value(page.text, "name") == ""
    assert "张三" not in page.text


def test_the_session_ends_when_the_certificate_expires(client, pki, rp):
    """What the certificate proved is not trusted beyond its validity, whatever the session's
    own lifetime (12 h)."""
    register_org(rp, "audit")
    expiring = issue_leaf(pki.intermediate, "expiring", not_after=utcnow() + timedelta(seconds=3))
    nonce, token = challenge(client)
    signed = signed_login(expiring, nonce=nonce, origin=ORIGIN)
    response = client.post("/login/cert", data={**signed.form(), "csrf_token": token})
    assert response.headers["Location"] == "/portal"
    assert client.get("/portal").status_code == 200

    time.sleep((expiring.cert.not_valid_after_utc - utcnow()).total_seconds() + 0.5)

    page = client.get("/portal")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")


def test_org_admin_id_token_carries_the_registered_identity(client, pki, rp):
    org = register_org(rp, "audit")
    cert_login(client, pki)
    pkce = Pkce.new()
    params = authorize_params(rp.client_id, pkce)
    result = follow_to_code(client, params)
    body = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    ).json
    claims = jwt.decode(body["id_token"], published_keys()).claims
    assert claims["sub"] == org.admin_subject
    assert claims["amr"] == ["hwk", "sc"]
    assert claims["acr"] == "urn:idp:acr:ukey"
    assert claims["role"] == "org_admin"
    assert claims["org_type"] == "audit"
    assert claims["org"] == {
        "id": str(org.id),
        "uscc": DEMO_USCC,
        "name": "上海示例审计事务所有限公司",
    }
    assert "phone_number" not in claims
    info = client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.json["role"] == "org_admin"


def test_org_with_two_identities_chooses_a_role(client, pki, rp):
    org = register_org(rp, "audit", "cost_consulting")
    cert_login(client, pki)
    response = client.get("/authorize", query_string=authorize_params(rp.client_id, Pkce.new()))
    assert response.headers["Location"].startswith("/authorize/choose")
    page = client.get(response.headers["Location"])
    assert "角色选择" in page.text
    assert "企业管理员" in page.text
    chosen = client.post(
        response.headers["Location"],
        data={
            "identity": f"{org.id}:cost_consulting:org_admin",
            "csrf_token": csrf_token(page.text),
        },
    )
    final = client.get(chosen.headers["Location"])
    assert "code" in query_of(final.headers["Location"])


def test_unregistered_identity_is_refused_at_the_relying_party(client, pki, app, rp):
    from tests.conftest import register

    register_org(rp, "audit")
    other = register(app, {"redirect_uris": [REDIRECT_URI]})
    cert_login(client, pki)
    result = query_of(
        client.get(
            "/authorize", query_string=authorize_params(other.client_id, Pkce.new())
        ).headers["Location"]
    )
    assert result["error"] == "access_denied"


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        ("expired", "证书已过期"),
        ("not_yet_valid", "证书尚未生效"),
        ("revoked", "证书已被吊销"),
        ("untrusted", "证书颁发机构不受信任"),
        ("no_digital_signature", "该证书不能用于签名登录"),
        ("server_auth", "该证书不能用于签名登录"),
        ("no_uscc", "证书中未找到有效的统一社会信用代码"),
        ("wrong_check", "证书中未找到有效的统一社会信用代码"),
        ("personal_cn", "证书中未找到有效的统一社会信用代码"),
        ("uscc_cn", "证书中未找到有效的统一社会信用代码"),
    ],
)
def test_each_certificate_failure_has_its_message_and_changes_nothing(client, pki, leaf, message):
    response, _signed, _token = cert_login(client, pki, leaf)
    assert response.status_code == 400
    assert message in response.text
    assert "idp_session=" not in response.headers.get("Set-Cookie", "")
    assert count(Organisation) == 0
    failed = (
        db.session()
        .scalars(select(AuditEvent).where(AuditEvent.action == "auth.cert_login_failed"))
        .all()
    )
    assert len(failed) == 1


def test_replayed_challenge_is_refused(client, pki):
    _first, signed, _token = cert_login(client, pki)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/logout").text)})
    token = csrf_token(client.get("/login").text)  # the CSRF secret is renewed at login
    again = client.post("/login/cert", data={**signed.form(), "csrf_token": token})
    assert again.status_code == 400
    assert "登录请求已过期或已使用" in again.text


def test_challenge_of_another_browser_is_refused(app, client, pki):
    nonce, _token = challenge(client)
    other = app.test_client()
    other_token = csrf_token(other.get("/login?method=cert").text)
    response = other.post(
        "/login/cert",
        data={
            **signed_login(pki["good_rsa"], nonce=nonce, origin=ORIGIN).form(),
            "csrf_token": other_token,
        },
    )
    assert response.status_code == 400
    assert "登录请求已过期或已使用" in response.text


@pytest.mark.parametrize(
    "change",
    [
        {"origin": "https://phish.example"},
        {"ts": int(time.time()) - 600},
        {"nonce": "unknown-nonce-value-0000000000"},
    ],
)
def test_forged_responses_are_refused(client, pki, change):
    response, _signed, _token = cert_login(client, pki, **change)
    assert response.status_code == 400
    assert count(Organisation) == 0


def test_signature_by_another_key_is_refused(client, pki):
    response, _signed, _token = cert_login(client, pki, "good_ec", key=pki["expired"].key)
    assert response.status_code == 400
    assert "签名验证失败" in response.text


def test_certificate_swapped_after_signing_is_refused(client, pki):
    nonce, token = challenge(client)
    signed = signed_login(pki["good_rsa"], nonce=nonce, origin=ORIGIN)
    form = signed.form()
    form["certificate"] = signed_login(pki["good_ec"], nonce=nonce, origin=ORIGIN).form()[
        "certificate"
    ]
    response = client.post("/login/cert", data={**form, "csrf_token": token})
    assert response.status_code == 400


@pytest.mark.parametrize("field", ["payload", "signature", "certificate", "chain"])
def test_malformed_fields_are_refused(client, pki, field):
    nonce, token = challenge(client)
    form = signed_login(pki["good_rsa"], nonce=nonce, origin=ORIGIN).form()
    form[field] = "%%%not base64%%%"
    response = client.post("/login/cert", data={**form, "csrf_token": token})
    assert response.status_code == 400


def test_bound_legacy_account_is_a_claim(client, pki, rp):
    from idp.identity.models import LegacyAccount

    org = register_org(rp, "audit")
    legacy = LegacyAccount(
        client_id=rp.client_id,
        uscc=DEMO_USCC,
        org_type=OrgType.AUDIT,
        account_ref="WX2024001",
        secret_kind="totp",
        secret_sealed="sealed",
        bound_identity_id=org.identities[0].id,
    )
    db.session().add(legacy)
    db.session().flush()
    org.identities[0].registrations[0].legacy_account_id = legacy.id
    db.session().commit()
    cert_login(client, pki)
    pkce = Pkce.new()
    result = follow_to_code(client, authorize_params(rp.client_id, pkce))
    body = token_request(
        client,
        {
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
        },
        auth=rp.auth,
    ).json
    assert jwt.decode(body["id_token"], published_keys()).claims["legacy_account"] == "WX2024001"


# --- 机构注册 started from a relying party ----------------------------------------------------


def register_through_the_wizard(client, rp):
    """选择注册类型 → 否 → the registration form, for the relying party; the 注册成功 page."""
    from tests.integration.orgs.helpers import register_details

    page = client.get("/register/audit/new")
    assert page.status_code == 200, page.text
    return client.post(
        "/register/audit/new",
        data={**register_details(), "platforms": rp.client_id, "csrf_token": csrf_token(page.text)},
    )


def continue_link(page: str) -> str:
    import html
    import re

    found = re.search(r'<a class="button" id="continue-login" href="([^"]+)">([^<]*)</a>', page)
    assert found, "no 继续登录 link on the page"
    return html.unescape(found.group(1))


def test_registration_started_at_a_relying_party_ends_back_there(client, pki, rp):
    params = authorize_params(rp.client_id, Pkce.new(), prompt="create")
    start = client.get("/authorize", query_string=params)
    login_page = start.headers["Location"]
    assert login_page.startswith("/login?") and "method=cert" in login_page
    interaction = query_of(login_page)["interaction"]
    assert 'id="ukey-login"' in client.get(login_page).text  # the UKey tab, not the phone one

    nonce, token = challenge(client)
    signed = signed_login(pki["good_rsa"], nonce=nonce, origin=ORIGIN)
    logged_in = client.post(
        "/login/cert", data={**signed.form(), "csrf_token": token, "interaction": interaction}
    )
    assert logged_in.headers["Location"] == "/register"
    done = register_through_the_wizard(client, rp)

    assert done.status_code == 200, done.text
    assert '<h1 id="result">注册成功</h1>' in done.text
    assert "进入门户" not in done.text
    assert "继续登录" in done.text
    resume = continue_link(done.text)
    assert resume == f"/authorize/resume?interaction={interaction}"
    result = follow_to_code_from(client, resume)
    assert set(result) >= {"code", "state"}
    assert result["state"] == params["state"]


def follow_to_code_from(client, location: str) -> dict[str, str]:
    for _hop in range(8):
        response = client.get(location)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["Location"]
        if location.startswith(REDIRECT_URI):
            return query_of(location)
    raise AssertionError("too many redirects")


def test_a_registration_not_started_at_a_relying_party_ends_at_the_portal(client, pki, rp):
    cert_login(client, pki)

    done = register_through_the_wizard(client, rp)

    assert "进入门户" in done.text
    assert 'id="continue-login"' not in done.text


def test_a_registered_org_with_prompt_create_logs_in_and_returns(client, pki, rp):
    register_org(rp, "audit")
    params = authorize_params(rp.client_id, Pkce.new(), prompt="create")
    login_page = client.get("/authorize", query_string=params).headers["Location"]
    interaction = query_of(login_page)["interaction"]
    nonce, token = challenge(client)
    signed = signed_login(pki["good_rsa"], nonce=nonce, origin=ORIGIN)

    logged_in = client.post(
        "/login/cert", data={**signed.form(), "csrf_token": token, "interaction": interaction}
    )

    location = logged_in.headers["Location"]
    assert location.startswith("/authorize?")
    assert query_of(location)["interaction"] == interaction
    assert query_of(location)["prompt"] == "create"
    assert "code" in follow_to_code_from(client, logged_in.headers["Location"])


def test_the_login_page_offers_organisation_registration(client):
    page = client.get("/login?interaction=abc123")

    assert "维修资金业务办理组织机构注册" in page.text
    assert 'href="/login?method=cert&amp;interaction=abc123"' in page.text


def test_a_suspended_orgs_ukey_login_is_refused_until_it_is_reactivated(client, pki, rp):
    from idp.orgs.suspension import reactivate_org, suspend_org

    register_org(rp, "audit")
    suspend_org(db.session(), DEMO_USCC, reason="违反平台使用规定", actor="test")
    db.session().commit()

    response, _signed, _token = cert_login(client, pki)

    assert response.status_code == 403
    assert "本机构已被平台暂停使用，请联系平台管理员" in response.text
    assert client.get_cookie("idp_session") is None
    assert count(OrgCertificate) == 0  # a refused login leaves no trace but the audit event
    failed = (
        db.session()
        .scalars(select(AuditEvent).where(AuditEvent.action == "auth.cert_login_failed"))
        .one()
    )
    assert failed.result == "cert_org_suspended"

    reactivate_org(db.session(), DEMO_USCC, actor="test")
    db.session().commit()
    response, _signed, _token = cert_login(client, pki)
    assert response.headers["Location"] == "/portal"
