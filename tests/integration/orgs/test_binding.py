"""Journey 1, the 是 path: binding a legacy account of the relying party with its current OTP code
(±1 step, single use) or its key; one answer for every mismatch; five wrong tries lock binding
of that account for 15 minutes."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_USCC, OTHER_USCC
from tests.integration.auth.helpers import field_errors
from tests.integration.orgs.helpers import (
    LEGACY_KEY,
    LOCKED,
    ORG_NAME,
    REF,
    WRONG,
    add_legacy,
    audit_events,
    cert_login,
    code_at,
    count,
    fetch,
    form_error,
    post_form,
    row_counts,
    stored_login,
    unbind,
    wrong_code,
)

BIND = "/register/cost_consulting/bind"


def bind(client, fund, *, ref=REF, code="", key="", url=BIND):
    return post_form(
        client,
        url,
        {"client_id": fund.client_id, "legacy_account": ref, "otp_code": code, "legacy_key": key},
    )


def assert_refused(response, message=WRONG, status=400):
    assert response.status_code == status, response.text
    assert form_error(response.text) == message
    assert "绑定成功" not in response.text


# --- success --------------------------------------------------------------------------------------


def test_binding_with_the_current_otp_code(client, admin, fund):
    from idp.identity.models import IdentityRegistration, LegacyAccount, Organisation, OrgIdentity

    account_id = add_legacy(fund.client_id)

    done = bind(client, fund, code=code_at(0))

    assert done.status_code == 200, done.text
    assert '<h1 id="result">绑定成功</h1>' in done.text
    assert 'href="/portal"' in done.text
    org = fetch(Organisation)
    assert (org.uscc, org.name) == (DEMO_USCC, ORG_NAME)
    identity = fetch(OrgIdentity)
    assert (identity.org_id, identity.org_type) == (org.id, "cost_consulting")
    registration = fetch(IdentityRegistration)
    assert (registration.identity_id, registration.client_id) == (identity.id, fund.client_id)
    assert registration.legacy_account_id == account_id
    account = fetch(LegacyAccount)
    assert account.bound_identity_id == identity.id
    assert account.bound_at is not None
    assert stored_login(client.get_cookie("idp_session").value)["org_id"] == org.id
    assert audit_events("orgs.legacy_bound") == [
        (
            f"uscc:{DEMO_USCC}",
            "success",
            {"org_type": "cost_consulting", "legacy_account_id": str(account_id)},
        )
    ]
    assert client.get("/portal").status_code == 200


def test_binding_with_the_legacy_key(client, admin, fund):
    from idp.identity.models import LegacyAccount

    add_legacy(fund.client_id, key=LEGACY_KEY)

    done = bind(client, fund, key=LEGACY_KEY)

    assert done.status_code == 200
    assert "绑定成功" in done.text
    assert fetch(LegacyAccount).bound_identity_id is not None


@pytest.mark.parametrize("step", [-1, 1])
def test_the_neighbouring_steps_are_accepted(client, admin, fund, step):
    add_legacy(fund.client_id)

    assert bind(client, fund, code=code_at(step)).status_code == 200


@pytest.mark.parametrize("step", [-3, -2, 2])
def test_codes_further_away_are_refused(client, admin, fund, step):
    add_legacy(fund.client_id)
    code = code_at(step)
    if code in {code_at(s) for s in (-1, 0, 1)}:
        pytest.skip("the code repeats inside the window (1 in 10^5)")

    assert_refused(bind(client, fund, code=code))


def test_a_used_code_is_refused_for_the_same_account(client, admin, fund):
    account_id = add_legacy(fund.client_id)
    code = code_at(0)
    assert bind(client, fund, code=code).status_code == 200
    unbind(account_id)
    cert_login(client)

    assert_refused(bind(client, fund, code=code))
    assert audit_events("orgs.legacy_bind_failed")[-1][1] == "code_reused"
    assert bind(client, fund, code=code_at(1)).status_code == 200


def test_a_registered_org_binds_another_identity(client, fund, org):
    from idp.identity.models import LegacyAccount, OrgIdentity

    cert_login(client, org_id=org.id)
    add_legacy(fund.client_id)

    assert bind(client, fund, code=code_at(0)).status_code == 200
    assert count(OrgIdentity, OrgIdentity.org_id == org.id) == 2
    assert (
        fetch(LegacyAccount).bound_identity_id
        == fetch(OrgIdentity, OrgIdentity.org_type == "cost_consulting").id
    )


# --- one answer for every mismatch ------------------------------------------------------------


MISMATCHES = {
    "unknown account": ({"ref": "NO-SUCH-ACCOUNT"}, "unknown_account"),
    "another org's account": ({"uscc": OTHER_USCC}, "mismatch"),
    "another type's account": ({"org_type": "audit"}, "mismatch"),
    "a key where a code is expected": ({"use_key": True}, "wrong_secret"),
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_every_mismatch_gets_the_same_answer(client, admin, fund, case):
    change, reason = MISMATCHES[case]
    add_legacy(
        fund.client_id,
        uscc=change.get("uscc", DEMO_USCC),
        org_type=change.get("org_type", "cost_consulting"),
    )
    before = row_counts()

    if change.get("use_key"):
        refused = bind(client, fund, key=LEGACY_KEY)
    else:
        refused = bind(client, fund, ref=change.get("ref", REF), code=code_at(0))

    assert_refused(refused)
    assert row_counts() == before
    assert stored_login(admin)["org_id"] is None
    assert audit_events("orgs.legacy_bind_failed") == [
        (f"uscc:{DEMO_USCC}", reason, {"org_type": "cost_consulting"})
    ]


def test_an_account_bound_already_gets_the_same_answer(client, admin, fund):
    """The wizard no longer offers a type the org holds, so this is the service's own check
    (e.g. against a binding that finished in another tab)."""
    from idp import db
    from idp.identity.models import OrgType
    from idp.orgs.legacy import BindRequest, LegacyBindError
    from idp.orgs.legacy import bind as bind_account
    from idp.orgs.registration import Applicant

    add_legacy(fund.client_id)
    assert bind(client, fund, code=code_at(0)).status_code == 200
    request = BindRequest(
        org_type=OrgType.COST_CONSULTING,
        client_id=fund.client_id,
        account_ref=REF,
        otp_code=code_at(1),
    )

    with pytest.raises(LegacyBindError) as refused:
        bind_account(db.session(), applicant=Applicant(DEMO_USCC, ORG_NAME), request=request)

    assert str(refused.value.message) == WRONG
    db.session().commit()  # the audit event, as the view keeps it
    assert audit_events("orgs.legacy_bind_failed")[-1][1] == "already_bound"


def test_a_wrong_key_gets_the_same_answer(client, admin, fund):
    add_legacy(fund.client_id, key=LEGACY_KEY)

    assert_refused(bind(client, fund, key=LEGACY_KEY + "x"))
    assert_refused(bind(client, fund, code=code_at(0)))


def test_code_or_key_is_required_but_not_both(client, admin, fund):
    add_legacy(fund.client_id)
    for values in ({}, {"code": code_at(0), "key": LEGACY_KEY}):
        refused = bind(client, fund, **values)
        assert refused.status_code == 400
        assert field_errors(refused.text, "otp_code") == ["请填写动态码或密钥（二选一）"]
    refused = bind(client, fund, code="12345")
    assert field_errors(refused.text, "otp_code") == ["动态码为 6 位数字"]
    assert audit_events("orgs.legacy_bind_failed") == []


# --- lockout ------------------------------------------------------------------------------------


def test_wrong_codes_count_but_fewer_than_five_do_not_lock(client, admin, fund):
    from idp.store import store

    add_legacy(fund.client_id)
    for _ in range(4):
        assert_refused(bind(client, fund, code=wrong_code()))
    assert store().get(f"legacy-bind:tries:{fund.client_id}:{REF}") is not None

    assert bind(client, fund, code=code_at(0)).status_code == 200
    assert store().get(f"legacy-bind:tries:{fund.client_id}:{REF}") is None


def test_the_sixth_try_is_locked_even_with_the_right_code(client, admin, fund):
    add_legacy(fund.client_id)
    for _ in range(5):
        assert_refused(bind(client, fund, code=wrong_code()))

    locked = bind(client, fund, code=code_at(0))

    assert_refused(locked, LOCKED, status=429)
    assert row_counts()["Organisation"] == 0
    results = [result for _actor, result, _details in audit_events("orgs.legacy_bind_failed")]
    assert results == ["wrong_secret"] * 5 + ["locked"]


def test_the_lock_holds_for_the_lockout_time_from_the_fifth_failure(client, admin, fund):
    from idp.store import store

    add_legacy(fund.client_id)
    for _ in range(5):
        bind(client, fund, code=wrong_code())

    left = store().ttl(f"legacy-bind:lock:{fund.client_id}:{REF}")
    assert left is not None
    assert 14 * 60 < left.total_seconds() <= 15 * 60


def test_unknown_accounts_lock_too(client, admin, fund):
    """No oracle: an account that does not exist counts and locks like one that does."""
    for _ in range(5):
        assert_refused(bind(client, fund, ref="NO-SUCH", code=wrong_code()))

    assert_refused(bind(client, fund, ref="NO-SUCH", code=wrong_code()), LOCKED, status=429)


def test_the_lock_is_per_legacy_account(client, admin, fund):
    add_legacy(fund.client_id)
    for _ in range(5):
        bind(client, fund, ref="SOMEONE-ELSE", code=wrong_code())

    assert bind(client, fund, code=code_at(0)).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"legacy_bind_lockout_seconds": 1800}])
def test_the_lock_message_follows_the_setting(client, admin, fund, settings_overrides):
    add_legacy(fund.client_id)
    for _ in range(5):
        bind(client, fund, code=wrong_code())

    assert_refused(bind(client, fund, code=code_at(0)), "错误次数过多，请 30 分钟后再试", 429)


# --- several relying parties --------------------------------------------------------------------


def test_with_several_platforms_the_user_chooses_the_accounts_one(client, admin, fund, other_rp):
    from idp.identity.models import IdentityRegistration

    add_legacy(other_rp.client_id, org_type="audit")
    url = "/register/audit/bind"
    page = client.get(url)
    assert '<select id="client_id" name="client_id">' in page.text
    assert f'<option value="{fund.client_id}">上海市房屋维修资金管理系统</option>' in page.text
    assert (
        f'<option value="{other_rp.client_id}">上海市物业管理监管与服务平台</option>' in page.text
    )

    assert_refused(bind(client, fund, code=code_at(0), url=url))
    done = bind(client, other_rp, code=code_at(1), url=url)

    assert done.status_code == 200
    assert fetch(IdentityRegistration).client_id == other_rp.client_id


def test_a_platform_that_does_not_allow_the_type_is_refused(client, admin, fund, other_rp):
    add_legacy(other_rp.client_id)  # cost_consulting at a client that allows only audit

    refused = bind(client, other_rp, code=code_at(0))

    assert refused.status_code == 400
    assert field_errors(refused.text, "client_id") == ["请选择平台"]
    assert row_counts()["Organisation"] == 0


def test_missing_csrf_token_is_refused(client, admin, fund):
    add_legacy(fund.client_id)
    client.get(BIND)

    refused = client.post(
        BIND, data={"client_id": fund.client_id, "legacy_account": REF, "otp_code": code_at(0)}
    )

    assert refused.status_code == 400
    assert row_counts()["Organisation"] == 0
