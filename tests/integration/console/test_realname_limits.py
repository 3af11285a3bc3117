"""手机二要素校验 is no unlimited name↔phone oracle: per admin (unconfirmed checks per hour), per
organisation (per day), per phone (per day) and per network (per hour). Over a limit the check
is refused with a clear message before the vendor is asked, nothing is saved, the refusal is
audited, and repeated refusals raise one alert."""

from __future__ import annotations

import pytest

from tests.integration.console.helpers import audit_rows, people_counts, post_form

NEW = "/org/operators/new"
LIMITED = "手机二要素校验次数过多，请稍后再试"
MISMATCH = "您填写的身份信息与手机号认证失败"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def vendor_calls(app) -> list[tuple[str, str]]:
    """Every (name, phone) the real-name vendor was asked about."""
    verifier = app.extensions["idp.realname"]
    calls: list[tuple[str, str]] = []
    original = verifier.verify

    def counted(*, name: str, phone: str):
        calls.append((name, phone))
        return original(name=name, phone=phone)

    verifier.verify = counted
    return calls


def add(admin, name: str, phone: str):
    return post_form(admin, NEW, {"name": name, "phone": phone})


def test_an_admin_gets_ten_mismatches_an_hour_then_no_more_queries(admin, home_org, vendor_calls):
    for n in range(10):
        assert MISMATCH in add(admin, "王小明", f"1370013{n:04d}").text
    before = people_counts()

    refused = [add(admin, "王小明", f"1360013{n:04d}") for n in range(3)]

    assert [r.status_code for r in refused] == [429, 429, 429]
    assert all(LIMITED in r.text for r in refused)
    assert len(vendor_calls) == 10  # the refused tries asked nobody
    assert people_counts() == before
    limited = audit_rows("orgs.realname_limited")
    assert [result for _actor, _target, result, _org in limited] == ["unconfirmed"] * 3
    assert len(audit_rows("orgs.realname_abuse_alert")) == 1


def test_matches_give_their_slot_back(admin, home_org, known, vendor_calls):
    for n in range(12):
        known("王小明", f"1370013{n:04d}")
        assert add(admin, "王小明", f"1370013{n:04d}").status_code == 302
    assert len(vendor_calls) == 12
    assert audit_rows("orgs.realname_limited") == []


@pytest.mark.parametrize("settings_overrides", [{"realname_org_daily_limit": 2}], indirect=True)
def test_an_organisation_has_a_daily_budget(admin, home_org, known, vendor_calls):
    for n in range(2):
        known("王小明", f"1370013{n:04d}")
        assert add(admin, "王小明", f"1370013{n:04d}").status_code == 302
    known("王小明", "13700139999")

    refused = add(admin, "王小明", "13700139999")

    assert refused.status_code == 429 and LIMITED in refused.text
    assert len(vendor_calls) == 2
    assert audit_rows("orgs.realname_limited")[-1][2] == "org"


def test_one_phone_is_checked_at_most_five_times_a_day(admin, home_org, vendor_calls):
    for name in ("王一", "王二", "王三", "王四", "王五"):
        assert MISMATCH in add(admin, name, "13700137001").text

    refused = add(admin, "王六", "13700137001")

    assert refused.status_code == 429
    assert len(vendor_calls) == 5
    assert audit_rows("orgs.realname_limited")[-1][2] == "phone"


def test_a_phone_change_counts_too(admin, home_org, operator, vendor_calls):
    from idp.identity.models import Membership
    from tests.integration.console.helpers import fetch

    membership = fetch(Membership)
    edit = f"/org/operators/{membership.id}/edit"
    for n in range(10):
        post_form(admin, edit, {"phone": f"1370013{n:04d}", "status": "active"})

    refused = post_form(admin, edit, {"phone": "13600130000", "status": "active"})

    assert refused.status_code == 429 and LIMITED in refused.text
    assert len(vendor_calls) == 10
    from idp.identity.models import Account

    assert fetch(Account).phone == operator.phone


@pytest.mark.parametrize("settings_overrides", [{"realname_ip_hourly_limit": 2}], indirect=True)
def test_the_join_page_is_limited_per_network(app, home_org, outbox, vendor_calls):
    from tests.integration.console.test_join import apply

    answers = [apply(app.test_client(), outbox, phone=f"1350013500{n}") for n in range(3)]

    assert [a.status_code for a in answers][:2] != [429, 429]
    assert answers[2].status_code == 429 and LIMITED in answers[2].text
    assert len(vendor_calls) == 2
