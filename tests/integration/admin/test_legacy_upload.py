"""原系统账号导入 in the platform console: the file ``idp legacy import`` reads, uploaded after
step-up, imported by the same service with the same per-row report as a table; a file that is
not a readable CSV, too large, missing or posted without the CSRF token imports nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import current_app
from flask.testing import FlaskClient
from sqlalchemy import select

from idp.admin.legacy import MAX_FILE_BYTES
from tests.conftest import DEMO_USCC, OTHER_USCC
from tests.flows import csrf_token
from tests.integration.admin.helpers import post_form, totp
from tests.integration.orgs.helpers import LEGACY_KEY, TOTP_SECRET, audit_events

URL = "/admin/legacy"
HEADER = "client_id,uscc,org_type,legacy_account,totp_secret,legacy_key"


@pytest.fixture
def stepped_up(client: FlaskClient, enrolled: str) -> FlaskClient:
    response = post_form(client, f"/admin/step-up?next={URL}", code=totp(enrolled, 1))
    assert response.headers["Location"] == URL
    return client


def upload(browser: FlaskClient, content: bytes, *, name: str = "accounts.csv") -> Any:
    token = csrf_token(browser.get(URL).text)
    return browser.post(
        URL,
        data={"csrf_token": token, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def csv_file(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def stored_refs() -> list[str]:
    from idp.identity.models import LegacyAccount

    with current_app.extensions["idp.db"]() as session:
        return list(session.scalars(select(LegacyAccount.account_ref).order_by(LegacyAccount.id)))


def cell(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}">') + len(f'id="{element_id}">')
    return html[start : html.index("<", start)]


def test_the_upload_needs_a_fresh_step_up(client: FlaskClient, enrolled: str):
    assert client.get(URL).headers["Location"] == f"/admin/step-up?next={URL}"


def test_the_page_names_the_columns(stepped_up: FlaskClient):
    page = stepped_up.get(URL)

    assert page.status_code == 200 and cell(page.text, "legacy-columns") == HEADER


def test_a_file_is_imported_with_the_report_as_a_table(stepped_up: FlaskClient, rp):
    content = csv_file(
        HEADER,
        f"{rp.client_id},{DEMO_USCC},audit,WXZJ-0001,{TOTP_SECRET},",
        f"{rp.client_id},{OTHER_USCC},bookkeeping,WXZJ-0002,,{LEGACY_KEY}",
        f"{rp.client_id},91310000MA1K00001X,audit,WXZJ-0003,,key",
        f"no-such-client,{DEMO_USCC},audit,WXZJ-0004,,key",
    )

    response = upload(stepped_up, content)

    assert response.status_code == 200
    assert [cell(response.text, f"count-{name}") for name in ("imported", "updated")] == ["2", "0"]
    assert [cell(response.text, f"count-{name}") for name in ("unchanged", "rejected")] == [
        "0",
        "2",
    ]
    rejected = response.text.split('id="legacy-rejected"')[1].split("</table>")[0]
    assert "<td>4</td>" in rejected and "invalid USCC" in rejected
    assert "<td>5</td>" in rejected and "unknown client_id" in rejected
    assert stored_refs() == ["WXZJ-0001", "WXZJ-0002"]
    assert audit_events("orgs.legacy_imported") == [
        (
            "platform_admin:ops.admin",
            "success",
            {"imported": "2", "updated": "0", "unchanged": "0", "rejected": "2"},
        )
    ]

    again = upload(stepped_up, content)
    assert cell(again.text, "count-unchanged") == "2" and stored_refs() == [
        "WXZJ-0001",
        "WXZJ-0002",
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"client_id,uscc\nx,y\n", "the header must be"),
        (b"\xff\xfe" + "client_id".encode("utf-16-le"), "not UTF-8"),
        (b"", "empty file"),
        (csv_file(HEADER, 'a,"unterminated'), "malformed CSV"),
    ],
)
def test_a_file_that_is_no_readable_csv_imports_nothing(
    stepped_up: FlaskClient, rp, content, reason
):
    good = f"{rp.client_id},{DEMO_USCC},audit,WXZJ-0001,{TOTP_SECRET},"
    response = upload(stepped_up, content + (good.encode() if reason == "malformed CSV" else b""))

    assert response.status_code == 400
    assert "文件无法读取，未导入任何账号" in response.text and reason in response.text
    assert 'id="legacy-summary"' not in response.text
    assert stored_refs() == []
    assert [event[1] for event in audit_events("orgs.legacy_imported")] == ["legacy_file_invalid"]


def test_a_file_over_the_limit_is_refused_and_imports_nothing(stepped_up: FlaskClient, rp):
    row = f"{rp.client_id},{DEMO_USCC},audit,WXZJ-0001,{TOTP_SECRET},\n".encode()
    content = csv_file(HEADER) + row + b"#" * (MAX_FILE_BYTES - len(row))

    response = upload(stepped_up, content)

    assert response.status_code == 413 and "文件不能超过 1024 KB" in response.text
    assert stored_refs() == [] and audit_events("orgs.legacy_imported") == []


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(stepped_up: FlaskClient):
    response = upload(stepped_up, b"x" * (2 * MAX_FILE_BYTES))

    assert response.status_code == 413 and "提交的内容过大" in response.text
    assert stored_refs() == []


def test_without_a_file_the_form_asks_for_one(stepped_up: FlaskClient):
    token = csrf_token(stepped_up.get(URL).text)

    response = stepped_up.post(URL, data={"csrf_token": token})

    assert response.status_code == 400 and "请选择要导入的文件" in response.text
    assert audit_events("orgs.legacy_imported") == []


def test_an_upload_without_the_csrf_token_imports_nothing(stepped_up: FlaskClient, rp):
    content = csv_file(HEADER, f"{rp.client_id},{DEMO_USCC},audit,WXZJ-0001,{TOTP_SECRET},")

    response = stepped_up.post(
        URL,
        data={"file": (io.BytesIO(content), "accounts.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 400
    assert stored_refs() == [] and audit_events("orgs.legacy_imported") == []


def test_a_large_body_is_refused_to_anyone_without_an_admin_session(client: FlaskClient, rp):
    """Only a platform admin's session may send more than the usual 64 KiB."""
    response = client.post(
        URL,
        data={"file": (io.BytesIO(b"x" * (100 * 1024)), "accounts.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 413
    assert stored_refs() == []
