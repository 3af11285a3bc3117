"""The operator login page: the stable field names of docs/design.md §7 and the page's headers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.integration.auth.helpers import all_field_errors, parse, post_login

EN_PO = Path(__file__).resolve().parents[3] / "idp/translations/en/LC_MESSAGES/messages.po"


@pytest.fixture
def english() -> dict[str, str]:
    """The English catalog as msgid -> text, compiled to its (git-ignored) .mo when missing or
    stale, written atomically as parallel workers may race. Skips while there is no catalog:
    then only the locale choice (html lang, cookie) can be checked."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if not EN_PO.exists():
        pytest.skip("no English catalog (idp/translations/en) yet")
    with EN_PO.open("rb") as file:
        catalog = read_po(file)
    mo = EN_PO.with_suffix(".mo")
    if not mo.exists() or mo.stat().st_mtime < EN_PO.stat().st_mtime:
        fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=".messages-", suffix=".mo")
        with os.fdopen(fd, "wb") as file:
            write_mo(file, catalog, use_fuzzy=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, mo)
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str) and m.string}


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_login_page_has_the_stable_field_names(client):
    page = client.get("/login")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    parsed = parse(page.text)
    inputs = parsed.inputs
    assert inputs["phone"]["autocomplete"] == "tel"
    assert inputs["phone"]["type"] == "text"
    assert inputs["password"]["autocomplete"] == "current-password"
    assert inputs["password"]["type"] == "password"
    assert inputs["sms_code"]["autocomplete"] == "one-time-code"
    assert inputs["csrf_token"]["type"] == "hidden"
    assert len(inputs["csrf_token"]["value"]) > 20
    (form,) = parsed.forms
    assert form["method"] == "post"
    assert form["action"] == "/login"
    assert form["data-sms-url"] == "/login/sms-code"
    assert '<button type="button" class="secondary" id="send-sms"' in page.text
    assert "发送验证码" in page.text


def test_login_page_password_field_never_echoes_a_value(client):
    page = client.post("/login", data={"phone": "13800138000", "password": "Secret-123"})

    assert page.status_code == 400  # no CSRF token
    assert "Secret-123" not in page.text


def test_login_page_forbids_framing_and_inline_script(client):
    page = client.get("/login")

    assert page.headers["X-Frame-Options"] == "DENY"
    csp = csp_directives(page.headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_login_page_prefills_only_a_short_phone(client):
    page = client.get("/login", query_string={"phone": "13800138000999"})

    assert parse(page.text).inputs["phone"]["value"] == "13800138000"


def test_chinese_is_the_default_language(client):
    page = client.get("/login")

    assert parse(page.text).html_attrs["lang"] == "zh-CN"
    assert "<h1>统一认证登录平台</h1>" in page.text
    assert client.get_cookie("lang") is None


def test_lang_en_switches_the_page_language_and_remembers_it(client):
    page = client.get("/login", query_string={"lang": "en"})

    assert page.status_code == 200
    assert parse(page.text).html_attrs["lang"] == "en"
    cookie = client.get_cookie("lang")
    assert cookie is not None
    assert cookie.value == "en"
    assert cookie.http_only
    assert cookie.same_site == "Lax"

    again = client.get("/login")
    assert parse(again.text).html_attrs["lang"] == "en"


def test_unknown_lang_falls_back_to_chinese_and_sets_no_cookie(client):
    page = client.get("/login", query_string={"lang": "fr"})

    assert parse(page.text).html_attrs["lang"] == "zh-CN"
    assert client.get_cookie("lang") is None


def test_lang_en_shows_the_login_page_and_its_errors_in_english(client, outbox, operator, english):
    page = client.get("/login", query_string={"lang": "en"})

    assert f"<h1>{english['统一认证登录平台']}</h1>" in page.text
    assert english["发送验证码"] in page.text
    assert "发送验证码" not in page.text
    sent = client.post(
        "/login/sms-code",
        data={
            "phone": operator.phone,
            "csrf_token": parse(page.text).inputs["csrf_token"]["value"],
        },
    )
    assert sent.json["message"] == english["验证码已发送，5 分钟内有效"]
    assert outbox.last(operator.phone, "login")["text"].startswith(
        "【统一认证登录平台】"
    )  # SMS stay Chinese
    refused = post_login(client, phone=operator.phone, password="Wrong-Pass-1", sms_code="000000")
    assert all_field_errors(refused.text) == {"sms_code": [english["验证码错误或已过期"]]}
