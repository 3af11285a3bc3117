"""Every audit event the provider records can be told in words (操作日志, audit views)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from idp.audit import wording

IDP = Path(__file__).resolve().parents[2] / "idp"
EVENT_NAME = re.compile(r"^(auth|orgs|oidc|sms|admin)\.[a-z_]+$")


def recorded_actions() -> set[str]:
    """Event names passed to ``record(...)`` literally or kept in module-level constants."""
    found: set[str] = set()
    for path in IDP.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                first = node.args[0]
                if name == "record" and isinstance(first, ast.Constant):
                    found.add(str(first.value))
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
                value = statement.value.value
                if isinstance(value, str) and EVENT_NAME.match(value):
                    found.add(value)
    return found


def test_every_recorded_action_has_words():
    actions = recorded_actions()

    assert len(actions) > 30  # the scan finds them
    assert sorted(actions - set(wording.ACTIONS)) == []


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ("membership:3 李* 138****8000", "李* 138****8000"),
        ("org:5", ""),
        ("138****8000", "138****8000"),
        ("client:maintenance-fund", "maintenance-fund"),
        ("initial_token:3 审计系统接入", "审计系统接入"),
    ],
)
def test_targets_lose_their_technical_ids(target, words):
    assert wording.target_words(target) == words


def test_refusals_are_told_with_their_errors_message(app):
    with app.test_request_context():
        assert wording.result_words("operator_exists") == "该手机号已是本机构的操作员"
        assert wording.result_words("success") == "成功"
        assert wording.result_words("http_503") == "应用返回 HTTP 503"
        assert wording.result_words("no_such_code") == "失败"
        assert wording.describe("orgs.operator_added", "membership:3 李* 138****8000") == (
            "新增操作员 李* 138****8000"
        )
        names = {"maintenance-fund": "上海市房屋维修资金管理系统"}
        assert wording.describe("oidc.code_issued", "client:maintenance-fund", names) == (
            "登录应用 上海市房屋维修资金管理系统"
        )
