"""``idp admins add|remove|list``: what they print, their exit codes, and that bad input changes
nothing (invoked as tests/integration/test_cli.py does: a context of their own per command)."""

from __future__ import annotations

import contextvars
import json

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.admin.models import PlatformAdmin
from idp.auth.passwords import verify_password
from idp.cli import admins_cli
from tests.integration.admin.helpers import ADMIN, ADMIN_PASSWORD, audit_actions, count, fetch_admin


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str, stdin: str | None = None) -> Result:
    result: Result = contextvars.Context().run(runner.invoke, admins_cli, list(args), input=stdin)
    return result


def test_add_asks_for_the_password_twice_and_stores_only_its_hash(runner):
    result = invoke(runner, "add", "Ops.Admin", stdin=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n")

    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.output
    admin = fetch_admin(ADMIN)
    assert verify_password(admin.password_hash, ADMIN_PASSWORD)
    assert not admin.totp_confirmed and admin.totp_secret is None
    assert audit_actions() == ["admin.account_added"]


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("ab", ADMIN_PASSWORD, "用户名须为"),
        ("ops admin", ADMIN_PASSWORD, "用户名须为"),
        (ADMIN, "short1A", "密码至少 8 位"),
        (ADMIN, "alllowercase", "至少三类"),
        (ADMIN, "Ops.Admin-2026", "密码不能包含用户名"),
    ],
)
def test_add_refuses_bad_input_and_adds_nothing(runner, username, password, message):
    result = invoke(runner, "add", username, "--password", password)

    assert result.exit_code == 1 and message in result.stderr
    assert "Traceback" not in result.output
    assert count(PlatformAdmin) == 0


def test_add_refuses_a_taken_username(runner):
    invoke(runner, "add", ADMIN, "--password", ADMIN_PASSWORD)
    result = invoke(runner, "add", ADMIN.upper(), "--password", "Another-Pass-7")

    assert result.exit_code == 1 and "该用户名已存在" in result.stderr
    assert count(PlatformAdmin) == 1
    assert verify_password(fetch_admin().password_hash, ADMIN_PASSWORD)


def test_list_and_remove(runner):
    invoke(runner, "add", ADMIN, "--password", ADMIN_PASSWORD)
    invoke(runner, "add", "second.admin", "--password", ADMIN_PASSWORD)

    listed = json.loads(invoke(runner, "list").stdout)
    assert [entry["username"] for entry in listed] == [ADMIN, "second.admin"]
    assert listed[0]["totp_bound"] is False and "password_hash" not in listed[0]

    removed = invoke(runner, "remove", "second.admin")
    assert removed.exit_code == 0 and count(PlatformAdmin) == 1
    missing = invoke(runner, "remove", "second.admin")
    assert missing.exit_code == 1 and "没有该平台管理员" in missing.stderr
    assert audit_actions()[-1] == "admin.account_removed"
