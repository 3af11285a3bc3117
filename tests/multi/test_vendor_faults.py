"""The SMS gateway and the real-name check time out or answer garbage, while three instances run
with the real vendor adapters (Aliyun SMS, Tencent Cloud real-name) against loopback fakes of
the vendors (``tests/contracts``): clear errors, nothing consumed or saved, a queued SMS retried
then given up, each outcome audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from idp.identity.models import Account, Membership
from tests.contracts.test_realname import FakeTencent
from tests.contracts.test_sms_gateway import KEY_ID, SECRET, SIGN_NAME, VENDOR_SETTINGS, FakeAliyun
from tests.integration.auth.helpers import store_keys
from tests.integration.console.helpers import SMS_FAILED, UNAVAILABLE, form_error
from tests.multi.harness import Browser, Cluster
from tests.multi.helpers import (
    PHONE,
    audit_rows,
    cert_login,
    count_rows,
    form_token,
    seed_operator_and_rp,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NEW_PHONE = "13900139000"
NEW_NAME = "阿依古丽·买买提"  # known to the fake carrier (tests/contracts/test_realname.py)
MASKED = "138****8000"
RETRIES = 2


@pytest.fixture(scope="module")
def sms_vendor() -> Iterator[FakeAliyun]:
    fake = FakeAliyun()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def realname_vendor() -> Iterator[FakeTencent]:
    fake = FakeTencent()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def cluster_overrides(sms_vendor: FakeAliyun, realname_vendor: FakeTencent) -> dict[str, str]:
    from tests.contracts.test_realname import KEY_ID as REALNAME_KEY_ID
    from tests.contracts.test_realname import SECRET as REALNAME_SECRET

    templates = {f"IDP_{k.upper()}": v for k, v in VENDOR_SETTINGS["aliyun"].items()}
    return templates | {
        "IDP_SMS_BACKEND": "aliyun",
        "IDP_SMS_ENDPOINT": sms_vendor.url,
        "IDP_SMS_ACCESS_KEY_ID": KEY_ID,
        "IDP_SMS_ACCESS_KEY_SECRET": SECRET,
        "IDP_SMS_SIGN_NAME": SIGN_NAME,
        "IDP_SMS_RETRIES": str(RETRIES),
        "IDP_REALNAME_BACKEND": "tencent",
        "IDP_REALNAME_ENDPOINT": realname_vendor.url,
        "IDP_REALNAME_ACCESS_KEY_ID": REALNAME_KEY_ID,
        "IDP_REALNAME_ACCESS_KEY_SECRET": REALNAME_SECRET,
        "IDP_REALNAME_TIMEOUT": "0.5",
    }


@pytest.fixture(autouse=True)
def vendors_answer(sms_vendor: FakeAliyun, realname_vendor: FakeTencent) -> None:
    for fake in (sms_vendor, realname_vendor):
        fake.mode = "ok"
        fake.received.clear()


def deliver_queue(control: Any) -> None:
    """The test process stands in for ``idp worker`` (see tests/conftest.py)."""
    from tests.conftest import drain_sms_queue

    drain_sms_queue(control)


def sent_codes(vendor: FakeAliyun) -> list[str]:
    import json

    return [json.loads(p["TemplateParam"]).get("code", "") for p in vendor.received]


def ask_code(cluster: Cluster, browser: Browser, name: str, token: str) -> Any:
    return browser.at(cluster[name]).post(
        "/login/sms-code", data={"phone": PHONE, "csrf_token": token}
    )


@pytest.mark.parametrize("answer", ["bad_json", "http_500"])
def test_a_login_code_the_gateway_garbles_is_retried_given_up_audited_and_withdrawn(
    cluster, control, browser, sms_vendor, answer
):
    seed_operator_and_rp(control)
    token = form_token(browser.at(cluster["A"]))
    sms_vendor.mode = answer

    asked = ask_code(cluster, browser, "A", token)
    deliver_queue(control)

    assert asked.status_code == 200  # queued: the vendor is never waited for
    assert len(sms_vendor.received) == 1 + RETRIES
    assert [(t, r) for _a, t, r in audit_rows("sms.delivery_retrying")] == [
        (MASKED, "sms_unavailable")
    ] * RETRIES
    assert [(t, r) for _a, t, r in audit_rows("sms.delivery_failed")] == [
        (MASKED, "sms_unavailable")
    ]
    assert audit_rows("sms.delivered") == []
    with control.app_context():
        assert store_keys(f"sms:code:login:{PHONE}:") == []  # withdrawn: nothing to guess
        assert store_keys(f"sms:interval:{PHONE}:") == []  # given back: ask again at once

    sms_vendor.mode = "ok"
    assert ask_code(cluster, browser, "B", token).status_code == 200
    deliver_queue(control)
    (code,) = sent_codes(sms_vendor)[-1:]
    logged_in = browser.at(cluster["C"]).post(
        "/login",
        data={"phone": PHONE, "password": "Initial-Pass-1", "sms_code": code, "csrf_token": token},
    )
    assert (logged_in.status_code, logged_in.headers["Location"]) == (302, "/portal")
    assert [t for _a, t, _r in audit_rows("sms.delivered")] == [MASKED]


def admin_console(cluster: Cluster, pki: Any) -> Any:
    admin = Browser().at(cluster["B"])
    assert cert_login(admin, admin, pki).headers["Location"] == "/portal"
    return admin


def add_operator(admin: Any) -> Any:
    token = form_token(admin, "/org/operators/new")
    return admin.post(
        "/org/operators/new", data={"name": NEW_NAME, "phone": NEW_PHONE, "csrf_token": token}
    )


def people() -> dict[str, int]:
    return {"accounts": count_rows(Account), "memberships": count_rows(Membership)}


@pytest.mark.parametrize("answer", ["slow", "bad_json"])
def test_a_real_name_check_that_times_out_or_answers_garbage_saves_and_sends_nothing(
    cluster, control, multi_pki, sms_vendor, realname_vendor, answer
):
    seed_operator_and_rp(control)
    admin = admin_console(cluster, multi_pki)
    before = people()
    realname_vendor.mode = answer

    refused = add_operator(admin)

    assert refused.status_code == 503
    assert form_error(refused.text) == UNAVAILABLE
    assert people() == before
    assert sms_vendor.received == []
    assert audit_rows("orgs.operator_added")[-1][2] == "realname_unavailable"


def test_an_initial_password_sms_that_times_out_saves_nothing(
    cluster, control, multi_pki, sms_vendor
):
    """The vendor client gives up after its timeout (5 s): the admin is told at once, and the
    account is not kept (its only password would be in the lost SMS)."""
    seed_operator_and_rp(control)
    admin = admin_console(cluster, multi_pki)
    before = people()
    sms_vendor.mode = "slow"

    refused = add_operator(admin)

    assert refused.status_code == 503
    assert form_error(refused.text) == SMS_FAILED
    assert people() == before
    assert audit_rows("orgs.operator_added")[-1][2] == "sms_unavailable"
    assert audit_rows("orgs.initial_password_sent") == []

    sms_vendor.mode = "ok"
    assert add_operator(admin).status_code == 302  # the admin's retry goes through
    assert people() == {k: v + 1 for k, v in before.items()}
    assert [p["PhoneNumbers"] for p in sms_vendor.received][-1] == NEW_PHONE
