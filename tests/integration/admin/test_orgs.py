"""机构管理 in the platform console: the list (search by USCC or name, pages), one organisation
in full (identities and registrations, operators with masked phones, certificates, legacy
accounts, state, recent audit events in words), and 暂停使用 / 恢复使用 after step-up with a
reason. Bad input is refused with a clear message and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import select

from idp import db
from idp.identity.models import Organisation, OrgCertificate
from idp.identity.uscc import check_character
from idp.orgs.registration import add_org
from tests.conftest import DEMO_USCC, OTHER_ORG_NAME, OTHER_USCC, add_other_org, register_for
from tests.flows import csrf_token
from tests.integration.admin.helpers import post_form, totp
from tests.integration.orgs.helpers import add_legacy, audit_events

ORG_URL = f"/admin/orgs/{DEMO_USCC}"


def stored_org(uscc: str = DEMO_USCC) -> Organisation:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(select(Organisation).where(Organisation.uscc == uscc)).one()


def step_up(browser: FlaskClient, secret: str, next_path: str) -> None:
    response = post_form(browser, f"/admin/step-up?next={next_path}", code=totp(secret, 1))
    assert response.headers["Location"] == next_path


def make_uscc(number: int) -> str:
    first17 = f"91310000MA{number:07d}"
    return first17 + check_character(first17)


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_organisations_with_state_and_operators(
    client: FlaskClient, enrolled: str, operator, rp
):
    add_other_org(rp.client_id)

    page = client.get("/admin/orgs")

    assert page.status_code == 200
    assert "上海示例审计事务所有限公司" in page.text and OTHER_ORG_NAME in page.text
    row = page.text.split(f'id="org-{DEMO_USCC}"')[1].split("</tr>")[0]
    assert "审计单位" in row and "<td>1</td>" in row and "正常" in row


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("91310000MA1K", DEMO_USCC),  # part of a USCC
        ("91310000ma1k000019", DEMO_USCC),  # any case
        ("示例审计", DEMO_USCC),  # part of the name
        ("代理记账", OTHER_USCC),
    ],
)
def test_search_by_uscc_or_name(client: FlaskClient, enrolled: str, org, rp, query, found):
    add_other_org(rp.client_id)

    page = client.get("/admin/orgs", query_string={"q": query})

    assert page.status_code == 200
    shown = {uscc for uscc in (DEMO_USCC, OTHER_USCC) if f'id="org-{uscc}"' in page.text}
    assert shown == {found}


def test_a_search_without_results_says_so(client: FlaskClient, enrolled: str, org):
    page = client.get("/admin/orgs", query_string={"q": "no such org"})

    assert page.status_code == 200 and "没有符合条件的机构" in page.text
    assert f'id="org-{DEMO_USCC}"' not in page.text


def test_the_list_has_pages(client: FlaskClient, enrolled: str, app):
    for number in range(25):
        add_org(db.session(), uscc=make_uscc(number), name=f"机构{number:02d}", org_type="audit")
    db.session().commit()

    first = client.get("/admin/orgs")
    second = client.get("/admin/orgs", query_string={"page": 2})

    assert first.text.count('id="org-') == 20 and "第 1 / 2 页，共 25 条" in first.text
    assert second.text.count('id="org-') == 5 and 'id="page-prev"' in second.text
    assert "机构24" in first.text and "机构00" in second.text  # newest first


@pytest.mark.parametrize(
    ("query", "message"),
    [({"q": "x" * 101}, "查询条件不能超过 100 字"), ({"page": "0"}, "分页参数无效")],
)
def test_bad_search_input_is_refused(client: FlaskClient, enrolled: str, org, query, message):
    page = client.get("/admin/orgs", query_string=query)

    assert page.status_code == 400 and message in page.text
    assert f'id="org-{DEMO_USCC}"' not in page.text


# --- one organisation -------------------------------------------------------------------------


@pytest.fixture
def full_org(org, operator, new_operator, rp):
    """The demo org registered at ``rp`` with a bound legacy account, two operators, a
    certificate seen, and a legacy account not yet bound."""
    from idp.identity.models import IdentityRegistration, LegacyAccount
    from idp.orgs.registration import add_identity

    register_for(org, rp.client_id)
    bound = add_legacy(rp.client_id, ref="WX-BOUND-01")
    add_legacy(rp.client_id, org_type="bookkeeping", ref="WX-FREE-02", key="k-secret-9")
    session = db.session()
    legacy = session.get(LegacyAccount, bound)
    _org, identity = add_identity(
        session,
        uscc=DEMO_USCC,
        name=org.name,
        org_type="cost_consulting",
        client_ids=[rp.client_id],
        legacy_account=legacy,
    )
    legacy.bound_identity_id, legacy.bound_at = identity.id, db.utcnow()
    session.add(
        OrgCertificate(
            org_id=org.id,
            fingerprint="ab" * 32,
            subject="CN=上海示例审计事务所有限公司",
            issuer="CN=Test Intermediate CA",
            serial="0F1E2D",
            not_after=db.utcnow() + timedelta(days=300),
        )
    )
    session.commit()
    assert session.scalars(select(IdentityRegistration)).all()
    return org


def test_the_detail_page_shows_the_organisation_in_full(
    client: FlaskClient, enrolled: str, full_org
):
    page = client.get(ORG_URL)

    assert page.status_code == 200
    text = page.text
    assert 'id="org-state">正常' in text and DEMO_USCC in text
    identities = text.split('id="org-identities"')[1].split("</table>")[0]
    assert "审计单位" in identities and "工程造价咨询单位" in identities
    assert "上海市房屋维修资金管理系统" in identities and "WX-BOUND-01" in identities
    operators = text.split('id="org-operators"')[1].split("</table>")[0]
    assert "张三" in operators and "138****8000" in operators and "139****9000" in operators
    assert "13800138000" not in text and "13900139000" not in text
    certificates = text.split('id="org-certificates"')[1].split("</table>")[0]
    assert "0F1E2D" in certificates and "Test Intermediate CA" in certificates
    legacy = text.split('id="org-legacy"')[1].split("</table>")[0]
    assert "WX-FREE-02" in legacy and "未绑定" in legacy and "已绑定" in legacy
    assert "k-secret-9" not in text
    events = text.split('id="org-events"')[1].split("</table>")[0]
    assert "平台添加机构" in events and "新增操作员" in events
    assert ">orgs.org_added<" not in events and "org:" not in events  # words, not ids


def test_an_unknown_organisation_is_not_found(client: FlaskClient, enrolled: str, org):
    assert client.get(f"/admin/orgs/{OTHER_USCC}").status_code == 404
    assert client.get("/admin/orgs/not-a-uscc").status_code == 404


# --- 暂停使用 / 恢复使用 ------------------------------------------------------------------------


def test_suspension_needs_a_fresh_step_up(client: FlaskClient, enrolled: str, org):
    response = client.get(f"{ORG_URL}/suspend")

    assert response.headers["Location"] == f"/admin/step-up?next={ORG_URL}/suspend"
    assert stored_org().suspended_at is None


def test_suspend_and_reactivate_from_the_console(client: FlaskClient, enrolled: str, org, operator):
    step_up(client, enrolled, f"{ORG_URL}/suspend")
    response = post_form(client, f"{ORG_URL}/suspend", reason="  资质过期，暂停使用  ")

    assert response.headers["Location"] == ORG_URL
    suspended = stored_org()
    assert suspended.suspended_at is not None
    assert suspended.suspension_reason == "资质过期，暂停使用"
    assert suspended.suspended_by == "platform_admin:ops.admin"
    page = client.get(ORG_URL)
    assert "已暂停该机构使用" in page.text and 'id="org-state">已暂停使用' in page.text
    assert "资质过期，暂停使用" in page.text and "平台暂停机构使用" in page.text
    assert audit_events("orgs.org_suspended")[0][:2] == ("platform_admin:ops.admin", "success")
    listed = client.get("/admin/orgs").text.split(f'id="org-{DEMO_USCC}"')[1]
    assert "已暂停使用" in listed.split("</tr>")[0]

    response = post_form(client, f"{ORG_URL}/reactivate", reason="")

    assert response.headers["Location"] == ORG_URL
    assert stored_org().suspended_at is None
    page = client.get(ORG_URL)
    assert "已恢复该机构使用" in page.text and 'id="org-state">正常' in page.text
    assert "平台恢复机构使用" in page.text


@pytest.mark.parametrize(
    ("reason", "message"),
    [("", "请填写暂停原因"), ("   ", "请填写暂停原因"), ("x" * 301, "原因不能超过 300 字")],
)
def test_suspension_without_a_proper_reason_is_refused(
    client: FlaskClient, enrolled: str, org, reason, message
):
    step_up(client, enrolled, f"{ORG_URL}/suspend")

    response = post_form(client, f"{ORG_URL}/suspend", reason=reason)

    assert response.status_code == 400 and message in response.text
    assert stored_org().suspended_at is None
    assert [event[1] for event in audit_events("orgs.org_suspended")] == [
        "suspension_reason_required" if reason.strip() == "" else "invalid_suspension"
    ]


def test_suspending_twice_or_reactivating_an_active_org_is_refused(
    client: FlaskClient, enrolled: str, org
):
    step_up(client, enrolled, f"{ORG_URL}/suspend")

    refused = post_form(client, f"{ORG_URL}/reactivate", reason="")
    assert refused.status_code == 409 and "该机构未被暂停使用，无需恢复" in refused.text

    post_form(client, f"{ORG_URL}/suspend", reason="第一次")
    first = stored_org().suspended_at
    again = post_form(client, f"{ORG_URL}/suspend", reason="第二次")
    assert again.status_code == 409 and "该机构已处于暂停使用状态" in again.text
    assert (stored_org().suspended_at, stored_org().suspension_reason) == (first, "第一次")


def test_a_suspension_without_the_csrf_token_changes_nothing(
    client: FlaskClient, enrolled: str, org
):
    step_up(client, enrolled, f"{ORG_URL}/suspend")

    response = client.post(f"{ORG_URL}/suspend", data={"reason": "无令牌"})

    assert response.status_code == 400
    assert stored_org().suspended_at is None and audit_events("orgs.org_suspended") == []


def test_an_unknown_organisation_cannot_be_suspended(client: FlaskClient, enrolled: str, org):
    step_up(client, enrolled, f"/admin/orgs/{OTHER_USCC}/suspend")
    page = client.get(f"{ORG_URL}/suspend")
    token = csrf_token(page.text)

    response = client.post(
        f"/admin/orgs/{OTHER_USCC}/suspend", data={"csrf_token": token, "reason": "不存在"}
    )

    assert response.status_code == 404
    assert audit_events("orgs.org_suspended") == []
