"""Journey 1, the 否 path (docs/design.md, manual §1.1 ③–⑤): 选择注册类型 → prompt → registration form →
"注册成功"; the duplicate-USCC refusal; adding another identity from the portal; and who may use
the wizard at all."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_USCC, OTHER_USCC, register
from tests.flows import PASSWORD, csrf_token, login
from tests.integration.auth.helpers import field_errors
from tests.integration.orgs.helpers import (
    DUPLICATES,
    ORG_NAME,
    PROMPTS,
    add_legacy,
    audit_events,
    cert_login,
    checkbox_values,
    count,
    fetch,
    form_error,
    input_value,
    post_form,
    radio_labels,
    register_details,
    row_counts,
    stored_login,
)

ALL_TYPES = [
    ("audit", "审计单位注册"),
    ("cost_consulting", "工程造价咨询单位注册"),
    ("bookkeeping", "代理记账公司注册"),
]
NEW = "/register/cost_consulting/new"


def register_cost_consulting(client, fund, **overrides):
    return post_form(client, NEW, {**register_details(**overrides), "platforms": fund.client_id})


# --- 选择注册类型 and the prompt ------------------------------------------------------------------


def test_choose_type_offers_each_type_as_the_manual_names_it(client, admin):
    page = client.get("/register")

    assert page.status_code == 200
    assert "选择注册类型" in page.text
    assert radio_labels(page.text) == ALL_TYPES
    assert ">下一步</button>" in page.text


def test_next_goes_to_the_prompt_of_the_chosen_type(client, admin):
    chosen = post_form(client, "/register", {"org_type": "cost_consulting"})

    assert (chosen.status_code, chosen.headers["Location"]) == (302, "/register/cost_consulting")


def test_next_without_a_choice_says_so(client, admin):
    refused = post_form(client, "/register", {})

    assert refused.status_code == 400
    assert field_errors(refused.text, "org_type") == ["请选择注册类型"]


@pytest.mark.parametrize("org_type", ["audit", "cost_consulting", "bookkeeping"])
def test_prompt_asks_for_an_existing_account_of_the_type(client, admin, org_type):
    page = client.get(f"/register/{org_type}")

    assert page.status_code == 200
    assert f'<p id="prompt">{PROMPTS[org_type]}</p>' in page.text
    assert f'href="/register/{org_type}/bind">是</a>' in page.text
    assert f'href="/register/{org_type}/new">否</a>' in page.text


def test_only_types_some_relying_party_allows_are_offered(app, client):
    register(
        app,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": ["https://rp.example/callback"],
            "org_types": ["audit"],
        },
    )
    register(  # a back-end client: users never log in to it, so it offers nothing
        app,
        {"client_name": "Batch", "grant_types": ["client_credentials"], "redirect_uris": []},
    )
    cert_login(client)

    assert radio_labels(client.get("/register").text) == [ALL_TYPES[0]]
    assert client.get("/register/bookkeeping").status_code == 404
    assert client.get("/register/bookkeeping/new").status_code == 404
    assert client.get("/register/nonsense").status_code == 404
    refused = post_form(client, "/register", {"org_type": "bookkeeping"})
    assert field_errors(refused.text, "org_type") == ["请选择注册类型"]


# --- the registration form ----------------------------------------------------------------------


def test_form_prefills_the_name_and_shows_the_uscc_read_only(client, admin, fund):
    page = client.get(NEW)

    assert page.status_code == 200
    assert input_value(page.text, "name") == ORG_NAME
    assert '<input id="uscc" name="uscc" readonly type="text" value="91310000MA1K000019">' in (
        page.text
    )
    for label in ("单位名称", "统一社会信用代码", "联系人", "联系电话", "单位地址"):
        assert f">{label}</label>" in page.text
    assert checkbox_values(page.text) == [fund.client_id]
    assert "注册</button>" in page.text


def test_registration_creates_the_org_its_identity_and_registration(client, admin, fund):
    from idp.identity.models import IdentityRegistration, Organisation, OrgIdentity

    done = register_cost_consulting(client, fund)

    assert done.status_code == 200, done.text
    assert '<h1 id="result">注册成功</h1>' in done.text
    assert 'href="/portal"' in done.text
    org = fetch(Organisation, Organisation.uscc == DEMO_USCC)
    assert (org.name, org.contact_person, org.contact_phone, org.address) == (
        ORG_NAME,
        "王悦芳",
        "13800138000",
        "上海市黄浦区示例路 1 号",
    )
    identity = fetch(OrgIdentity, OrgIdentity.org_id == org.id)
    assert identity.org_type == "cost_consulting"
    registration = fetch(IdentityRegistration, IdentityRegistration.identity_id == identity.id)
    assert (registration.client_id, registration.legacy_account_id) == (fund.client_id, None)
    assert stored_login(client.get_cookie("idp_session").value)["org_id"] == org.id
    assert audit_events("orgs.registered") == [
        (
            f"uscc:{DEMO_USCC}",
            "success",
            {"org_type": "cost_consulting", "clients": fund.client_id},
        )
    ]


def test_after_registration_the_portal_offers_another_identity(client, admin, fund):
    register_cost_consulting(client, fund)

    portal = client.get("/portal")

    assert portal.status_code == 200
    assert 'href="/register">新增注册身份</a>' in portal.text


def test_the_portal_link_is_only_for_org_admins(client, outbox, operator):
    logged_in = login(client, outbox, phone=operator.phone, password=PASSWORD)
    assert logged_in.status_code == 302

    portal = client.get("/portal")

    assert portal.status_code == 200
    assert "新增注册身份" not in portal.text


def test_a_posted_uscc_is_ignored(client, admin, fund):
    from idp.identity.models import Organisation

    done = register_cost_consulting(client, fund, uscc=OTHER_USCC)

    assert done.status_code == 200
    assert count(Organisation, Organisation.uscc == OTHER_USCC) == 0
    assert fetch(Organisation).uscc == DEMO_USCC


@pytest.mark.parametrize("org_type", ["audit", "cost_consulting", "bookkeeping"])
def test_an_existing_legacy_account_refuses_the_registration(client, admin, fund, org_type):
    add_legacy(fund.client_id, org_type=org_type)
    before = row_counts()

    refused = post_form(
        client,
        f"/register/{org_type}/new",
        {**register_details(), "platforms": fund.client_id},
    )

    assert refused.status_code == 409
    assert form_error(refused.text) == DUPLICATES[org_type]
    assert row_counts() == before
    assert stored_login(admin)["org_id"] is None


def test_a_legacy_account_of_another_org_or_type_does_not_refuse(client, admin, fund):
    add_legacy(fund.client_id, uscc=OTHER_USCC)
    add_legacy(fund.client_id, org_type="audit", ref="WXZJ-SJ-0002")

    assert register_cost_consulting(client, fund).status_code == 200


BAD_INPUTS = [
    ({"name": ""}, "name", "请输入单位名称"),
    ({"name": "   "}, "name", "请输入单位名称"),
    ({"name": "名" * 201}, "name", "单位名称不能超过 200 字"),
    ({"contact_person": ""}, "contact_person", "请输入联系人"),
    ({"contact_phone": ""}, "contact_phone", "请输入联系电话"),
    (
        {"contact_phone": "1380013800"},
        "contact_phone",
        "请输入正确的手机号或固定电话（如 021-62345678）",
    ),
    (
        {"contact_phone": "138001\n38000"},
        "contact_phone",
        "请输入正确的手机号或固定电话（如 021-62345678）",
    ),
    (
        {"contact_phone": "021-1234"},
        "contact_phone",
        "请输入正确的手机号或固定电话（如 021-62345678）",
    ),
    (
        {"contact_phone": "１３８００１３８０００"},
        "contact_phone",
        "请输入正确的手机号或固定电话（如 021-62345678）",
    ),
    ({"address": ""}, "address", "请输入单位地址"),
    ({"address": "路" * 300}, "address", "单位地址不能超过 200 字"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUTS)
def test_bad_input_is_refused_next_to_its_field(client, admin, fund, change, field, message):
    before = row_counts()

    refused = register_cost_consulting(client, fund, **change)

    assert refused.status_code == 400
    assert field_errors(refused.text, field) == [message]
    assert row_counts() == before


@pytest.mark.parametrize("phone", ["021-63211234", "02163211234", "63211234", "0571-8765432-12"])
def test_landlines_are_contact_phones(client, admin, fund, phone):
    from idp.identity.models import Organisation

    assert register_cost_consulting(client, fund, contact_phone=phone).status_code == 200
    assert fetch(Organisation).contact_phone == phone


def test_no_platform_chosen_is_refused(client, admin, fund):
    refused = post_form(client, NEW, register_details())

    assert refused.status_code == 400
    assert field_errors(refused.text, "platforms") == ["请选择要注册的平台"]
    assert row_counts()["Organisation"] == 0


def test_only_platforms_that_allow_the_type_are_offered(client, admin, fund, other_rp):
    assert checkbox_values(client.get("/register/audit/new").text) == [
        fund.client_id,
        other_rp.client_id,
    ]
    assert checkbox_values(client.get("/register/bookkeeping/new").text) == [fund.client_id]

    refused = post_form(
        client,
        "/register/bookkeeping/new",
        {**register_details(), "platforms": [fund.client_id, other_rp.client_id]},
    )

    assert refused.status_code == 400
    assert field_errors(refused.text, "platforms") == ["请选择要注册的平台"]
    assert row_counts()["Organisation"] == 0


def test_an_identity_can_be_registered_for_several_platforms(client, admin, fund, other_rp):
    from idp.identity.models import IdentityRegistration

    done = post_form(
        client,
        "/register/audit/new",
        {**register_details(), "platforms": [fund.client_id, other_rp.client_id]},
    )

    assert done.status_code == 200
    assert count(IdentityRegistration) == 2


def test_missing_csrf_token_is_refused_and_changes_nothing(client, admin, fund):
    client.get(NEW)

    refused = client.post(NEW, data={**register_details(), "platforms": fund.client_id})

    assert refused.status_code == 400
    assert "页面已过期，请刷新后重试" in refused.text
    assert row_counts()["Organisation"] == 0


# --- another identity for a registered org --------------------------------------------------------


def test_a_registered_org_adds_another_identity_through_the_wizard(client, admin, fund):
    from idp.identity.models import Organisation, OrgIdentity

    register_cost_consulting(client, fund)
    assert radio_labels(client.get("/register").text) == [ALL_TYPES[0], ALL_TYPES[2]]
    assert client.get("/register/cost_consulting").status_code == 404

    form = client.get("/register/audit/new")
    assert input_value(form.text, "contact_person") == "王悦芳"
    done = post_form(
        client,
        "/register/audit/new",
        {**register_details(contact_person="李四"), "platforms": fund.client_id},
    )

    assert done.status_code == 200
    assert count(Organisation) == 1
    org = fetch(Organisation)
    assert org.contact_person == "李四"
    assert sorted(i.org_type.value for i in _identities(org.id)) == ["audit", "cost_consulting"]
    assert count(OrgIdentity) == 2


def _identities(org_id):
    from flask import current_app
    from sqlalchemy import select

    from idp.identity.models import OrgIdentity

    with current_app.extensions["idp.db"]() as session:
        return list(session.scalars(select(OrgIdentity).where(OrgIdentity.org_id == org_id)))


def test_all_types_held_leaves_nothing_to_choose(client, admin, fund):
    for org_type in ("audit", "cost_consulting", "bookkeeping"):
        post_form(
            client,
            f"/register/{org_type}/new",
            {**register_details(), "platforms": fund.client_id},
        )

    page = client.get("/register")

    assert radio_labels(page.text) == []
    assert "贵单位已注册全部可注册的身份。" in page.text
    assert 'href="/portal">返回门户</a>' in page.text


def test_an_identity_without_registrations_is_still_offered(client, fund, org):
    """``idp orgs add`` makes an identity registered nowhere: the wizard completes it."""
    from idp.identity.models import IdentityRegistration, OrgIdentity

    cert_login(client, org_id=org.id)
    assert radio_labels(client.get("/register").text) == ALL_TYPES

    done = post_form(
        client, "/register/audit/new", {**register_details(), "platforms": fund.client_id}
    )

    assert done.status_code == 200
    assert count(OrgIdentity) == 1
    assert count(IdentityRegistration) == 1


# --- who may use the wizard -----------------------------------------------------------------------


def wizard_urls(app):
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("orgs."):
            urls.append(rule.rule.replace("<org_type>", "cost_consulting"))
    assert len(urls) == 4
    return urls


def test_without_a_login_session_every_route_redirects_to_login(app, client, fund):
    token = csrf_token(client.get("/login").text)

    for url in wizard_urls(app):
        for response in (client.get(url), client.post(url, data={"csrf_token": token})):
            if response.status_code == 405:
                continue
            assert response.status_code == 302, url
            assert response.headers["Location"] == "/login?method=cert", url


def test_an_operator_session_is_refused(app, client, fund, operator):
    cert_login(client, kind="operator", account_id=operator.id, certificate=False)
    before = row_counts()

    for url in wizard_urls(app):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "机构注册需使用企业 UKey 登录" in response.text
    token = csrf_token(client.get("/login").text)
    refused = client.post(NEW, data={**register_details(), "csrf_token": token})
    assert refused.status_code == 403
    assert row_counts() == before


def test_an_org_admin_session_without_certificate_must_log_in_again(app, client, fund):
    cert_login(client, certificate=False)

    for url in wizard_urls(app):
        assert client.get(url).headers["Location"] == "/login?method=cert"


def test_an_expired_session_must_log_in_again(app, client, admin, fund):
    from idp.store import store

    store().delete(f"session:{admin}")

    assert client.get("/register").headers["Location"] == "/login?method=cert"


def test_registration_renews_the_session_id(client, app, admin, fund):
    """Session fixation: the id of the certificate login is useless once the org is registered."""
    done = register_cost_consulting(client, fund)
    assert done.status_code == 200, done.text
    renewed = client.get_cookie("idp_session").value
    assert renewed != admin
    assert client.get("/portal").status_code == 200
    stale = app.test_client()
    stale.set_cookie("idp_session", admin)
    assert stale.get("/portal").status_code == 302
