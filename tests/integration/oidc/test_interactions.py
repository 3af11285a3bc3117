"""Interactions between /authorize and the pages it hands off to: forced password change, role
choice (角色选择), consent, and the portal."""

from __future__ import annotations

from idp import db
from idp.oidc.models import AuthorizationCode
from idp.orgs.registration import add_org
from idp.store import store
from tests.conftest import OTHER_USCC, register
from tests.flows import (
    NEW_PASSWORD,
    PASSWORD,
    REDIRECT_URI,
    Pkce,
    authorize_params,
    change_password,
    csrf_token,
    follow_to_code,
    login,
    query_of,
)


def start(client, rp, **extra):
    params = authorize_params(rp.client_id, Pkce.new(), **extra)
    response = client.get("/authorize", query_string=params)
    return params, response


def test_first_login_must_change_password_before_any_code(client, outbox, rp, new_operator):
    params, response = start(client, rp)
    interaction = query_of(response.headers["Location"])["interaction"]
    done = login(
        client, outbox, phone=new_operator.phone, password=PASSWORD, interaction=interaction
    )
    assert done.headers["Location"].startswith("/password/change")
    # Going straight back to /authorize does not issue a code: it sends to the change page.
    again = client.get("/authorize", query_string={**params, "interaction": interaction})
    assert again.headers["Location"].startswith("/password/change")
    assert db.session().query(AuthorizationCode).count() == 0
    assert client.get("/authorize", query_string={**params, "prompt": "none"}).status_code == 302
    none = query_of(
        client.get("/authorize", query_string={**params, "prompt": "none"}).headers["Location"]
    )
    assert none["error"] == "interaction_required"

    changed = change_password(client, current=PASSWORD, new=NEW_PASSWORD, interaction=interaction)
    assert changed.status_code == 302
    assert changed.headers["Location"].startswith("/authorize?")
    assert query_of(changed.headers["Location"])["interaction"] == interaction
    result = follow_to_code(client, {**params, "interaction": interaction})
    assert "code" in result


def second_identity(app, operator_org):
    """Make the operator's organisation also a 工程造价咨询单位 (cost consulting)."""
    add_org(
        db.session(), uscc=operator_org.uscc, name=operator_org.name, org_type="cost_consulting"
    )
    db.session().commit()


def test_role_choice_when_several_identities_are_eligible(client, app, org, rp, logged_in):
    second_identity(app, org)
    _params, response = start(client, rp)
    assert response.headers["Location"].startswith("/authorize/choose")
    page = client.get(response.headers["Location"])
    assert "角色选择" in page.text
    assert "审计单位" in page.text
    assert "工程造价咨询单位" in page.text
    chosen = client.post(
        response.headers["Location"],
        data={
            "identity": f"{org.id}:cost_consulting:operator",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert chosen.headers["Location"].startswith("/authorize?")
    final = client.get(chosen.headers["Location"])
    assert "code" in query_of(final.headers["Location"])
    code = db.session().query(AuthorizationCode).one()
    assert code.identity.org_type == "cost_consulting"


def test_role_choice_refuses_an_identity_not_offered(client, app, org, rp, logged_in):
    second_identity(app, org)
    _params, response = start(client, rp)
    page = client.get(response.headers["Location"])
    refused = client.post(
        response.headers["Location"],
        data={"identity": f"{org.id}:bookkeeping:org_admin", "csrf_token": csrf_token(page.text)},
    )
    assert refused.status_code == 400
    assert "请选择一个身份" in refused.text


def test_role_choice_cancel_is_access_denied(client, app, org, rp, logged_in):
    second_identity(app, org)
    params, response = start(client, rp)
    page = client.get(response.headers["Location"])
    cancelled = client.post(
        response.headers["Location"], data={"cancel": "1", "csrf_token": csrf_token(page.text)}
    )
    result = follow_to_code(
        client, {**params, "interaction": query_of(cancelled.headers["Location"])["interaction"]}
    )
    assert result["error"] == "access_denied"
    assert result["state"] == params["state"]


def test_select_account_forces_the_choice_page(client, rp, logged_in):
    _params, response = start(client, rp, prompt="select_account")
    assert response.headers["Location"].startswith("/authorize/choose")


def test_client_restricted_to_other_org_types_is_access_denied(client, app, logged_in):
    rp = register(app, {"redirect_uris": [REDIRECT_URI], "org_types": ["bookkeeping"]})
    _params, response = start(client, rp)
    result = query_of(response.headers["Location"])
    assert result["error"] == "access_denied"


def test_consent_page_for_clients_that_ask(client, app, logged_in):
    rp = register(app, {"redirect_uris": [REDIRECT_URI], "require_consent": True})
    _first, response = start(client, rp)
    assert response.headers["Location"].startswith("/authorize/consent")
    page = client.get(response.headers["Location"])
    assert "授权确认" in page.text
    approved = client.post(
        response.headers["Location"], data={"approve": "1", "csrf_token": csrf_token(page.text)}
    )
    assert "code" in query_of(client.get(approved.headers["Location"]).headers["Location"])
    # Remembered (docs/protocol.md, "Consent"): the next request needs no page.
    _params, again = start(client, rp)
    assert "code" in query_of(again.headers["Location"])


def test_consent_denied_is_access_denied(client, app, logged_in):
    rp = register(app, {"redirect_uris": [REDIRECT_URI], "require_consent": True})
    params, response = start(client, rp)
    page = client.get(response.headers["Location"])
    denied = client.post(
        response.headers["Location"], data={"deny": "1", "csrf_token": csrf_token(page.text)}
    )
    result = follow_to_code(
        client, {**params, "interaction": query_of(denied.headers["Location"])["interaction"]}
    )
    assert result["error"] == "access_denied"


def test_decision_pages_need_csrf(client, app, org, rp, logged_in):
    second_identity(app, org)
    _params, response = start(client, rp)
    refused = client.post(
        response.headers["Location"], data={"identity": f"{org.id}:audit:operator"}
    )
    assert refused.status_code == 400


def test_unknown_interaction_is_a_clear_error(client, logged_in):
    response = client.get("/authorize/resume?interaction=nope")
    assert response.status_code == 404
    assert "登录请求已过期" in response.text


def test_a_login_hands_its_request_straight_back_to_authorize(client, outbox, rp, operator):
    params, response = start(client, rp)
    interaction = query_of(response.headers["Location"])["interaction"]
    done = login(client, outbox, phone=operator.phone, password=PASSWORD, interaction=interaction)
    assert done.status_code == 302
    assert query_of(done.headers["Location"]) == {**params, "interaction": interaction}
    code = query_of(client.get(done.headers["Location"]).headers["Location"])
    assert code["state"] == params["state"] and code["code"]


def test_a_login_whose_request_expired_meanwhile_says_so(client, app, outbox, rp, operator):
    _params, response = start(client, rp)
    interaction = query_of(response.headers["Location"])["interaction"]
    with app.test_request_context():
        store().delete(f"interaction:{interaction}")  # its 15 minutes ran out during the login
    done = login(client, outbox, phone=operator.phone, password=PASSWORD, interaction=interaction)
    assert done.headers["Location"] == f"/authorize/resume?interaction={interaction}"
    page = client.get(done.headers["Location"])
    assert page.status_code == 404
    assert "登录请求已过期" in page.text
    assert db.session().query(AuthorizationCode).count() == 0
    assert client.get("/account").status_code == 200  # the login itself stands


def test_portal_lists_clients_with_an_entry_point(client, app, org, logged_in):
    register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": [REDIRECT_URI],
            "initiate_login_uri": "https://rp.example/login",
            "client_uri": "https://rp.example/home",
        },
    )
    register(
        app,
        {
            "client_name": "后台服务",
            "grant_types": ["client_credentials"],
            "scope": "org.operators",
        },
    )
    register(
        app,
        {
            "client_name": "只限代理记账",
            "redirect_uris": [REDIRECT_URI],
            "org_types": ["bookkeeping"],
            "client_uri": "https://other.example/",
        },
    )
    page = client.get("/portal")
    assert page.status_code == 200
    assert "上海市房屋维修资金管理系统" in page.text
    assert (
        "https://rp.example/login?iss=http%3A%2F%2Flocalhost"
        "&amp;target_link_uri=https%3A%2F%2Frp.example%2Fhome&amp;login_hint=13800138000"
        in page.text
    )
    assert "后台服务" not in page.text
    assert "只限代理记账" not in page.text


def test_portal_requires_login(client):
    response = client.get("/portal")
    assert response.headers["Location"].startswith("/login")


def test_operator_of_two_orgs_chooses_between_them(client, app, org, outbox, rp, operator):
    from tests.conftest import enrol

    other = add_org(
        db.session(), uscc=OTHER_USCC, name="另一家代理记账公司", org_type="bookkeeping"
    )
    enrol(db.session(), other, name="张三", phone=operator.phone)
    db.session().commit()
    login(client, outbox, phone=operator.phone, password=PASSWORD)
    _params, response = start(client, rp)
    page = client.get(response.headers["Location"])
    assert "另一家代理记账公司" in page.text
    assert "上海示例审计事务所有限公司" in page.text


def test_pages_of_a_pending_request_allow_the_client_in_form_action(client, rp):
    """Chromium applies form-action to the redirects after a form POST, which end at the RP."""
    _params, response = start(client, rp)
    page = client.get(response.headers["Location"])
    assert "form-action 'self' https://rp.example;" in page.headers["Content-Security-Policy"]
    plain = client.get("/login")
    assert "form-action 'self';" in plain.headers["Content-Security-Policy"]
