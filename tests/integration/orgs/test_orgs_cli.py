"""``idp orgs list | show | suspend | reactivate``: what they print, their exit codes, and that
bad input changes nothing. They call the services the console calls (``idp.orgs.directory``,
``idp.orgs.suspension``). Each invocation runs in an empty ``contextvars`` context, as a
separate ``idp`` process would (see tests/integration/test_cli.py)."""

from __future__ import annotations

import contextvars
import json

import pytest
from click.testing import Result
from flask.testing import FlaskCliRunner

from idp.cli import orgs_cli
from idp.identity.models import Organisation
from tests.conftest import DEMO_USCC, OTHER_ORG_NAME, OTHER_USCC, add_other_org, register_for
from tests.integration.orgs.helpers import audit_events, fetch


@pytest.fixture
def runner(app) -> FlaskCliRunner:
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    result: Result = contextvars.Context().run(runner.invoke, orgs_cli, list(args))
    return result


def stored(uscc: str = DEMO_USCC) -> Organisation:
    return fetch(Organisation, Organisation.uscc == uscc)


def test_list_prints_every_organisation_as_json(runner, operator, rp):
    add_other_org(rp.client_id)

    result = invoke(runner, "list")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert (listed["total"], listed["page"], listed["pages"]) == (2, 1, 1)
    by_uscc = {org["uscc"]: org for org in listed["organisations"]}
    assert by_uscc[DEMO_USCC]["state"] == "active" and by_uscc[DEMO_USCC]["operators"] == 1
    assert by_uscc[OTHER_USCC]["name"] == OTHER_ORG_NAME
    assert by_uscc[OTHER_USCC]["types"] == ["bookkeeping"]


def test_list_searches_by_uscc_or_name(runner, org, rp):
    add_other_org(rp.client_id)

    by_name = json.loads(invoke(runner, "list", "--search", "代理记账").stdout)
    by_uscc = json.loads(invoke(runner, "list", "--search", DEMO_USCC[:12].lower()).stdout)

    assert [o["uscc"] for o in by_name["organisations"]] == [OTHER_USCC]
    assert [o["uscc"] for o in by_uscc["organisations"]] == [DEMO_USCC]


def test_list_refuses_a_search_that_is_too_long(runner, org):
    result = invoke(runner, "list", "--search", "x" * 101)

    assert result.exit_code == 1 and "查询条件不能超过 100 字" in result.stderr


def test_show_prints_the_organisation_with_masked_phones(runner, operator, rp):
    register_for(operator.memberships[0].org, rp.client_id)

    result = invoke(runner, "show", DEMO_USCC.lower())

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["uscc"], shown["state"], shown["suspension_reason"]) == (
        DEMO_USCC,
        "active",
        None,
    )
    assert shown["identities"] == [
        {"type": "audit", "registrations": [{"client_id": rp.client_id, "legacy_account": None}]}
    ]
    assert shown["operators"] == [{"name": "张三", "phone": "138****8000", "status": "active"}]
    assert "13800138000" not in result.stdout


def test_show_of_an_unknown_organisation_fails(runner, org):
    result = invoke(runner, "show", OTHER_USCC)

    assert result.exit_code == 1 and "没有该统一社会信用代码的机构" in result.stderr


def test_suspend_and_reactivate(runner, org):
    result = invoke(runner, "suspend", DEMO_USCC, "--reason", "资质过期")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"suspended {DEMO_USCC}: 0 tokens revoked")
    assert (stored().suspension_reason, stored().suspended_by) == ("资质过期", "cli")
    shown = json.loads(invoke(runner, "show", DEMO_USCC).stdout)
    assert (shown["state"], shown["suspension_reason"]) == ("suspended", "资质过期")
    assert audit_events("orgs.org_suspended") == [
        ("cli", "success", {"reason": "资质过期", "tokens_revoked": "0", "logout_notices": "0"})
    ]

    result = invoke(runner, "reactivate", DEMO_USCC)

    assert result.exit_code == 0 and result.stdout == f"reactivated {DEMO_USCC}\n"
    assert stored().suspended_at is None and stored().suspension_reason == ""
    assert audit_events("orgs.org_reactivated") == [("cli", "success", {})]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["suspend", DEMO_USCC, "--reason", " "], "请填写暂停原因"),
        (["suspend", DEMO_USCC, "--reason", "x" * 301], "原因不能超过 300 字"),
        (["suspend", OTHER_USCC, "--reason", "不存在"], "没有该统一社会信用代码的机构"),
        (["reactivate", DEMO_USCC], "该机构未被暂停使用，无需恢复"),
    ],
)
def test_bad_input_changes_nothing(runner, org, args, message):
    result = invoke(runner, *args)

    assert result.exit_code == 1 and message in result.stderr
    assert "Traceback" not in result.output
    assert stored().suspended_at is None


def test_suspend_requires_a_reason(runner, org):
    result = invoke(runner, "suspend", DEMO_USCC)

    assert result.exit_code == 2 and "--reason" in result.stderr
    assert stored().suspended_at is None


def test_suspending_a_suspended_organisation_is_refused(runner, org):
    invoke(runner, "suspend", DEMO_USCC, "--reason", "第一次")

    result = invoke(runner, "suspend", DEMO_USCC, "--reason", "第二次")

    assert result.exit_code == 1 and "该机构已处于暂停使用状态" in result.stderr
    assert stored().suspension_reason == "第一次"
    assert [event[1] for event in audit_events("orgs.org_suspended")] == [
        "success",
        "org_already_suspended",
    ]
