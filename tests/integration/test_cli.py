"""The ``idp`` command's groups (orgs, operators, clients) through click's runner: what they print,
their exit codes, and that bad input changes nothing.

The groups are ``AppGroup``s registered on ``idp.cli.main`` (not on ``app.cli``), so they are
invoked directly. Each invocation runs in an empty ``contextvars`` context, as a separate ``idp``
process would: the command then pushes its own app context (and database session) instead of
sharing the test's. The state is read back in sessions of its own.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import socket
from typing import Any

import click
import pytest
from click.testing import Result
from flask import Flask, current_app
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from idp.cli import clients_cli, operators_cli, orgs_cli
from idp.oidc.models import Client
from tests.conftest import DEMO_USCC, OTHER_USCC
from tests.flows import PASSWORD, login
from tests.integration.auth.helpers import all_field_errors

ORG_NAME = "上海示例审计事务所有限公司"
PHONE = "13800138000"


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, group: click.Group, *args: str) -> Result:
    result: Result = contextvars.Context().run(runner.invoke, group, list(args))
    return result


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_error(result: Result, message: str) -> None:
    """A clean click error: exit code 1, ``Error: <message>`` on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Error: {message}" in result.stderr
    assert "Traceback" not in result.output


def count(model: type, *where: Any) -> int:
    with current_app.extensions["idp.db"]() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))


def fetch(model: type, *where: Any) -> Any:
    with current_app.extensions["idp.db"]() as session:
        return session.scalars(select(model).where(*where)).one()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- orgs -------------------------------------------------------------------------------------


def add_org(runner: FlaskCliRunner, uscc: str = DEMO_USCC, org_type: str = "audit") -> Result:
    return invoke(runner, orgs_cli, "add", "--uscc", uscc, "--name", ORG_NAME, "--type", org_type)


def test_orgs_add_creates_the_org_with_its_identity(runner):
    from idp.audit.models import AuditEvent
    from idp.identity.models import Organisation

    printed = ok_json(add_org(runner))

    assert printed == {"id": printed["id"], "uscc": DEMO_USCC, "name": ORG_NAME, "types": ["audit"]}
    org = fetch(Organisation, Organisation.uscc == DEMO_USCC)
    assert org.id == printed["id"]
    assert org.name == ORG_NAME
    assert fetch(AuditEvent, AuditEvent.action == "orgs.org_added").ip == "cli"


def test_orgs_add_normalises_a_lowercase_uscc(runner):
    printed = ok_json(add_org(runner, uscc=DEMO_USCC.lower()))

    assert printed["uscc"] == DEMO_USCC


def test_orgs_add_adds_another_identity_but_not_the_same_twice(runner):
    from idp.identity.models import OrgIdentity

    add_org(runner)
    printed = ok_json(add_org(runner, org_type="cost_consulting"))
    assert printed["types"] == ["audit", "cost_consulting"]

    assert_error(add_org(runner), "该机构已有此类型身份")
    assert count(OrgIdentity) == 2


@pytest.mark.parametrize(
    "uscc", ["91310000MA1K000018", "91310000MA1K00001", "91310000MA1K0I0019", "not-a-code"]
)
def test_orgs_add_refuses_an_invalid_uscc_and_stores_nothing(runner, uscc):
    from idp.audit.models import AuditEvent
    from idp.identity.models import Organisation

    result = add_org(runner, uscc=uscc)

    assert_error(result, f"统一社会信用代码无效：{uscc.upper()}")
    assert count(Organisation) == 0
    assert count(AuditEvent) == 0


def test_orgs_add_refuses_an_unknown_type_and_an_empty_name(runner):
    from idp.identity.models import Organisation

    unknown = add_org(runner, org_type="bank")
    assert unknown.exit_code == 2
    assert "Invalid value for '--type'" in unknown.stderr
    empty = invoke(runner, orgs_cli, "add", "--uscc", DEMO_USCC, "--name", " ", "--type", "audit")
    assert_error(empty, "机构名称不能为空且不超过 200 字")
    assert count(Organisation) == 0


# --- operators --------------------------------------------------------------------------------


def add_operator(runner: FlaskCliRunner, *extra: str, phone: str = PHONE, uscc: str = DEMO_USCC):
    return invoke(
        runner, operators_cli, "add", "--org", uscc, "--name", "张三", "--phone", phone, *extra
    )


def test_operators_add_with_a_password_sends_nothing_and_forces_a_change(runner, app, outbox, org):
    from idp.identity.models import Account

    printed = ok_json(add_operator(runner, "--password", PASSWORD))

    assert printed == {
        "account_id": printed["account_id"],
        "phone": PHONE,
        "org": DEMO_USCC,
        "initial_password_sent": False,
    }
    assert outbox.messages() == []
    account = fetch(Account, Account.phone == PHONE)
    assert account.must_change_password is True
    assert account.password_hash.startswith("$argon2id$")
    response = login(app.test_client(), outbox, phone=PHONE, password=PASSWORD)
    assert response.headers["Location"] == "/password/change"


def test_operators_add_without_a_password_sends_a_generated_one(runner, app, outbox, org):
    from idp.auth.passwords import policy_errors
    from idp.identity.models import Account

    printed = ok_json(add_operator(runner))

    assert printed["initial_password_sent"] is True
    (message,) = outbox.messages()
    assert message["phone"] == PHONE
    assert message["purpose"] == "initial_password"
    password = message["code"]
    assert message["text"] == (
        f"【统一认证登录平台】您的账号已开通，初始密码为{password}，首次登录需修改密码。"
    )
    assert policy_errors(password, phone=PHONE, old_hash=None) == []
    assert password not in fetch(Account, Account.phone == PHONE).password_hash
    assert password not in printed.values()  # shown only to the phone's owner

    client = app.test_client()
    response = login(client, outbox, phone=PHONE, password=password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/password/change"
    assert client.get("/portal").headers["Location"] == "/password/change"


def test_operators_add_refuses_the_same_phone_twice_in_one_org(runner, outbox, org):
    from idp.identity.models import Account, Membership

    ok_json(add_operator(runner))

    assert_error(add_operator(runner), "该手机号已是本机构的操作员")
    assert count(Account) == 1
    assert count(Membership) == 1
    assert len(outbox.messages()) == 1


def test_operators_add_reuses_the_person_in_another_org(runner, outbox, org):
    from idp.identity.models import Account, Membership

    ok_json(add_operator(runner, "--password", PASSWORD))
    add_org(runner, uscc=OTHER_USCC, org_type="cost_consulting")

    printed = ok_json(add_operator(runner, uscc=OTHER_USCC))

    assert printed["initial_password_sent"] is False  # the person keeps the one password
    assert count(Account) == 1
    assert count(Membership) == 2
    # As when an org admin adds them: told that the account now also works for the new org.
    assert [m["purpose"] for m in outbox.messages()] == ["operator_added"]


@pytest.mark.parametrize(
    "phone", ["1380013800", "1380013800a", "１３８００１３８０００", "13800138000\n", "23800138000"]
)
def test_operators_add_refuses_a_bad_phone_and_stores_nothing(runner, outbox, org, phone):
    from idp.identity.models import Account, Membership

    assert_error(add_operator(runner, phone=phone), "请输入 11 位手机号")
    assert count(Account) == 0
    assert count(Membership) == 0
    assert outbox.messages() == []


def test_operators_add_refuses_a_weak_password(runner, outbox, org):
    from idp.identity.models import Account

    result = add_operator(runner, "--password", "abc")

    assert_error(result, "密码至少 8 位；密码须包含大写字母、小写字母、数字、符号中的至少三类")
    assert count(Account) == 0


def test_operators_add_refuses_an_unknown_org(runner, outbox):
    from idp.identity.models import Account

    assert_error(add_operator(runner), f"no organisation with USCC {DEMO_USCC}")
    assert count(Account) == 0


ALIYUN_DOWN = {
    "sms_backend": "aliyun",
    "sms_endpoint": f"http://127.0.0.1:{closed_port()}/",
    "sms_access_key_id": "test-key-id",
    "sms_access_key_secret": "test-key-secret",
    "sms_sign_name": "统一认证登录平台",
    "sms_template_login": "SMS_000001",
    "sms_template_password": "SMS_000002",
}


@pytest.mark.parametrize("settings_overrides", [ALIYUN_DOWN])
def test_operators_add_stores_nothing_when_the_password_sms_fails(runner, org):
    from idp.identity.models import Account, Membership

    assert_error(add_operator(runner), "短信发送失败，请稍后再试")
    assert count(Account) == 0
    assert count(Membership) == 0


# --- clients ----------------------------------------------------------------------------------

CONFIDENTIAL = {
    "client_name": "上海市房屋维修资金管理系统",
    "redirect_uris": ["https://rp.example/callback"],
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "scope": "openid profile phone org.operators",
}


def add_client(runner: FlaskCliRunner, metadata: Any = None) -> Result:
    text = metadata if isinstance(metadata, str) else json.dumps(metadata or CONFIDENTIAL)
    return invoke(runner, clients_cli, "add", "--json", text)


def token_status(app: Flask, client_id: str, secret: str) -> tuple[int, str]:
    """Client authentication at the token endpoint (client_credentials with HTTP Basic)."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "org.operators"},
        headers={"Authorization": f"Basic {basic}"},
    )
    return response.status_code, response.json.get("error", "")


def test_clients_add_prints_the_secret_once_and_stores_its_digest(runner, app):
    from idp.audit.models import AuditEvent
    from idp.oidc.models import Client

    printed = ok_json(add_client(runner))

    secret = printed["client_secret"]
    assert len(secret) >= 43
    assert printed["client_secret_expires_at"] == 0
    assert printed["client_name"] == CONFIDENTIAL["client_name"]
    assert printed["redirect_uris"] == CONFIDENTIAL["redirect_uris"]
    assert printed["token_endpoint_auth_method"] == "client_secret_basic"
    stored = fetch(Client, Client.client_id == printed["client_id"])
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(stored.client_metadata)
    assert fetch(AuditEvent, AuditEvent.action == "oidc.client_registered").ip == "cli"
    assert token_status(app, printed["client_id"], secret)[0] == 200


def test_clients_add_takes_a_chosen_client_id(runner):
    printed = ok_json(add_client(runner, {**CONFIDENTIAL, "client_id": "maintenance-fund"}))

    assert printed["client_id"] == "maintenance-fund"
    assert_error(
        add_client(runner, {**CONFIDENTIAL, "client_id": "maintenance-fund"}),
        "client_id 'maintenance-fund' already exists",
    )


STANDARD_METADATA = {
    "application_type": "web",
    "contacts": ["it@rp.example"],
    "logo_uri": "https://rp.example/logo.png",
    "policy_uri": "https://rp.example/privacy",
    "tos_uri": "https://rp.example/terms",
    "software_id": "4NRB1-0XZABZI9E6-5SM3R",
    "software_version": "2.4.1",
    "subject_type": "public",
    "default_max_age": 3600,
    "require_auth_time": True,
    "backchannel_logout_uri": "https://rp.example/backchannel",
    "backchannel_logout_session_required": True,
}


def test_clients_add_keeps_standard_metadata_and_ignores_unknown_with_a_warning(runner):
    result = add_client(
        runner, {**CONFIDENTIAL, **STANDARD_METADATA, "software_statement": "e30", "colour": "blue"}
    )

    printed = ok_json(result)
    assert {k: printed[k] for k in STANDARD_METADATA} == STANDARD_METADATA
    assert "colour" not in printed and "software_statement" not in printed
    assert "Warning: unknown client metadata 'colour' ignored" in result.stderr
    assert "software_statement" not in result.stderr  # standard, ignored silently


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("application_type", "desktop", 'application_type: "web" or "native"'),
        ("subject_type", "secret", "subject_type: one of ['public', 'pairwise']"),
        ("logo_uri", "javascript:alert(1)", "logo_uri: 'javascript:alert(1)' must be an absolute"),
        ("contacts", "it@rp.example", "contacts: must be a list"),
        ("default_max_age", -1, "default_max_age: must be a whole number of seconds"),
        ("refresh_token_reuse_interval", 61, "refresh_token_reuse_interval: must be a whole"),
        ("userinfo_signed_response_alg", "ES256", "userinfo_signed_response_alg: userinfo is"),
        ("request_uris", ["https://rp.example/r"], "request_uris: request_uri is not"),
    ],
)
def test_clients_add_refuses_standard_fields_with_values_it_cannot_honour(
    runner, field, value, message
):
    before = count(Client)

    assert_error(add_client(runner, {**CONFIDENTIAL, field: value}), message)
    assert count(Client) == before


def test_clients_add_allows_http_on_loopback_in_development(runner):
    printed = ok_json(
        add_client(runner, {**CONFIDENTIAL, "redirect_uris": ["http://127.0.0.1:8000/cb"]})
    )

    assert printed["redirect_uris"] == ["http://127.0.0.1:8000/cb"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"client_name": ', "--json is not valid JSON: "),
        ('["https://rp.example/callback"]', "--json must be a JSON object"),
        (
            {**CONFIDENTIAL, "id_token_encrypted_response_alg": "RSA-OAEP"},
            "id_token_encrypted_response_alg: encrypted ID tokens are not supported",
        ),
        (
            {**CONFIDENTIAL, "redirect_uris": ["http://rp.example/callback"]},
            "redirect_uris: 'http://rp.example/callback' must use https",
        ),
        (
            {**CONFIDENTIAL, "redirect_uris": ["https://rp.example/callback#frag"]},
            "redirect_uris: 'https://rp.example/callback#frag' must not contain a fragment",
        ),
        (
            {**CONFIDENTIAL, "redirect_uris": ["/callback"]},
            "redirect_uris: '/callback' must be an absolute http(s) URI",
        ),
        ({**CONFIDENTIAL, "grant_types": ["password"]}, "grant_types: must be a list of"),
        ({**CONFIDENTIAL, "redirect_uris": []}, "redirect_uris: required for the authorization"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "unsupported-value",
        "http",
        "fragment",
        "relative",
        "grant",
        "no-redirect",
    ],
)
def test_clients_add_refuses_bad_metadata_and_stores_nothing(runner, metadata, message):
    from idp.audit.models import AuditEvent
    from idp.oidc.models import Client

    assert_error(add_client(runner, metadata), message)
    assert count(Client) == 0
    assert count(AuditEvent) == 0


def test_clients_list_and_show_never_print_the_secret(runner):
    printed = ok_json(add_client(runner))
    secret = printed["client_secret"]

    listed = invoke(runner, clients_cli, "list")
    shown = invoke(runner, clients_cli, "show", printed["client_id"])

    assert [c["client_id"] for c in ok_json(listed)] == [printed["client_id"]]
    info = ok_json(shown)
    assert info["client_id"] == printed["client_id"]
    assert info["client_name"] == CONFIDENTIAL["client_name"]
    for result in (listed, shown):
        assert secret not in result.output
        assert '"client_secret"' not in result.output
    assert_error(
        invoke(runner, clients_cli, "show", "no-such-client"), "no client 'no-such-client'"
    )


def test_clients_update_changes_metadata_and_refuses_bad_changes(runner):
    from idp.oidc.models import Client

    client_id = ok_json(add_client(runner))["client_id"]

    updated = ok_json(
        invoke(runner, clients_cli, "update", client_id, "--json", '{"client_name": "新名称"}')
    )
    assert updated["client_name"] == "新名称"
    assert "client_secret" not in updated  # a key of the printed object

    bad = invoke(
        runner,
        clients_cli,
        "update",
        client_id,
        "--json",
        '{"redirect_uris": ["http://rp.example/cb"]}',
    )
    assert_error(bad, "redirect_uris: 'http://rp.example/cb' must use https")
    assert_error(
        invoke(runner, clients_cli, "update", client_id, "--json", '{"client_id": "other"}'),
        "client_id cannot be changed",
    )
    stored = fetch(Client, Client.client_id == client_id)
    assert stored.client_metadata["client_name"] == "新名称"
    assert stored.client_metadata["redirect_uris"] == CONFIDENTIAL["redirect_uris"]


def test_clients_rotate_secret_retires_the_old_secret(runner, app):
    from idp.oidc.models import Client

    printed = ok_json(add_client(runner))
    client_id, old = printed["client_id"], printed["client_secret"]

    rotated = ok_json(invoke(runner, clients_cli, "rotate-secret", client_id))

    new = rotated["client_secret"]
    assert new != old
    assert len(new) >= 43
    assert token_status(app, client_id, old) == (401, "invalid_client")
    assert token_status(app, client_id, new)[0] == 200
    assert fetch(Client, Client.client_id == client_id).secret_hash == (
        hashlib.sha256(new.encode()).hexdigest()
    )


def test_clients_remove_deletes_the_client(runner, app):
    from idp.oidc.models import Client

    printed = ok_json(add_client(runner))
    client_id, secret = printed["client_id"], printed["client_secret"]

    result = invoke(runner, clients_cli, "remove", client_id)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"removed {client_id}\n"
    assert count(Client) == 0
    assert token_status(app, client_id, secret) == (401, "invalid_client")
    assert_error(invoke(runner, clients_cli, "remove", client_id), f"no client '{client_id}'")


def test_operator_created_by_the_cli_cannot_log_in_with_a_wrong_password(runner, app, outbox, org):
    ok_json(add_operator(runner, "--password", PASSWORD))

    response = login(app.test_client(), outbox, phone=PHONE, password="Wrong-Pass-1")

    assert response.status_code == 400
    assert all_field_errors(response.text) == {"password": ["手机号或密码错误"]}


# --- clients initial-token ------------------------------------------------------------------------


def test_initial_token_issue_prints_the_token_once_and_list_never(runner):
    from idp.oidc.models import InitialAccessToken, digest

    issued = invoke(
        runner, clients_cli, "initial-token", "issue", "--label", "审计系统", "--max-uses", "3"
    )

    assert issued.exit_code == 0, issued.output
    shown = json.loads(issued.output)
    assert (shown["label"], shown["state"], shown["max_uses"], shown["uses"]) == (
        "审计系统",
        "active",
        3,
        0,
    )
    with current_app.extensions["idp.db"]() as session:
        stored = session.scalars(select(InitialAccessToken)).one()
        assert stored.token_hash == digest(shown["token"])
    listed = invoke(runner, clients_cli, "initial-token", "list")
    assert listed.exit_code == 0 and shown["token"] not in listed.output
    assert [t["label"] for t in json.loads(listed.output)] == ["审计系统"]

    revoked = invoke(runner, clients_cli, "initial-token", "revoke", str(shown["id"]))

    assert revoked.exit_code == 0, revoked.output
    assert json.loads(invoke(runner, clients_cli, "initial-token", "list").output)[0]["state"] == (
        "revoked"
    )


def test_initial_token_issue_refuses_bad_input_and_stores_nothing(runner):
    from idp.oidc.models import InitialAccessToken

    for args, message in (
        (["--label", " "], "名称须为"),
        (["--label", "x", "--days", "0"], "有效期须为"),
        (["--label", "x", "--max-uses", "0"], "可用次数须为"),
    ):
        result = invoke(runner, clients_cli, "initial-token", "issue", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    with current_app.extensions["idp.db"]() as session:
        assert session.scalars(select(InitialAccessToken)).all() == []
    unknown = invoke(runner, clients_cli, "initial-token", "revoke", "42")
    assert unknown.exit_code == 1


def test_clients_add_accepts_front_channel_logout_metadata(runner, app):
    metadata = {
        **CONFIDENTIAL,
        "frontchannel_logout_uri": "https://rp.example/frontchannel-logout",
        "frontchannel_logout_session_required": True,
    }
    printed = ok_json(add_client(runner, metadata))
    assert printed["frontchannel_logout_uri"] == "https://rp.example/frontchannel-logout"
    assert printed["frontchannel_logout_session_required"] is True
    other_origin = {**metadata, "frontchannel_logout_uri": "https://elsewhere.example/fc"}
    assert_error(
        add_client(runner, other_origin),
        "frontchannel_logout_uri: 'https://elsewhere.example/fc' must have the scheme, host and "
        "port of a redirect URI",
    )
    assert count(Client) == 1
