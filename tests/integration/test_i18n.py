"""UI language: Chinese by default, English with ``?lang=en`` (remembered in a cookie), and an
English catalog that translates every message with the same placeholders."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

TRANSLATIONS = Path(__file__).resolve().parents[2] / "idp" / "translations"
EN_PO = TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po"
EN_MO = EN_PO.with_suffix(".mo")
TEMPLATE = TRANSLATIONS / "messages.pot"

# A %-conversion as Python's %-formatting reads it: %(name)s, %d, %% ...
PLACEHOLDER = re.compile(
    r"%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?(?P<type>[a-zA-Z%])"
)


def read_catalog(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def placeholders(text: str) -> list[str]:
    return sorted(match.group(0) for match in PLACEHOLDER.finditer(text))


@pytest.fixture(scope="session", autouse=True)
def compiled_catalog() -> Path:
    """Compile the English catalog when its .mo (git-ignored) is missing or stale, so that this
    module also passes without ``make translations``. Written atomically: xdist workers may race."""
    if EN_MO.exists() and EN_MO.stat().st_mtime >= EN_PO.stat().st_mtime:
        return EN_MO
    catalog = read_catalog(EN_PO)
    fd, tmp = tempfile.mkstemp(dir=EN_MO.parent, prefix=".messages-", suffix=".mo")
    try:
        with os.fdopen(fd, "wb") as file:
            write_mo(file, catalog, use_fuzzy=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; pybabel compile leaves it world-readable
        os.replace(tmp, EN_MO)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return EN_MO


# --- locale selection -----------------------------------------------------------------------------


def get(app: Flask, client: FlaskClient, url: str) -> TestResponse:
    """One request in an app context of its own, as in production. The ``app`` fixture keeps an
    app context open for the whole test, which requests would otherwise share, and Flask-Babel
    caches the selected locale in ``g``: the first request's language would stick."""
    with app.app_context():
        return client.get(url)


def assert_chinese(text: str) -> None:
    assert '<html lang="zh-CN">' in text
    assert "发送验证码" in text
    assert "统一认证登录平台" in text
    assert "Send code" not in text


def assert_english(text: str) -> None:
    assert '<html lang="en">' in text
    assert "Send code" in text  # template string
    assert "Log in" in text
    assert "Unified Login Platform" in text
    assert "Mobile number" in text  # lazy form label (idp/auth/forms.py)
    assert "Resend in {s} s" in text  # placeholder filled in by the template
    assert "发送验证码" not in text


def test_login_is_chinese_by_default(app, client):
    page = get(app, client, "/login")

    assert page.status_code == 200
    assert_chinese(page.text)
    assert client.get_cookie("lang") is None


def test_lang_en_switches_to_english_and_is_remembered(app, client):
    page = get(app, client, "/login?lang=en")

    assert page.status_code == 200
    assert_english(page.text)
    cookie = client.get_cookie("lang")
    assert cookie is not None
    assert cookie.value == "en"
    assert cookie.http_only

    again = get(app, client, "/login")
    assert again.status_code == 200
    assert_english(again.text)


def test_lang_zh_cn_switches_back_to_chinese(app, client):
    get(app, client, "/login?lang=en")

    page = get(app, client, "/login?lang=zh_CN")

    assert_chinese(page.text)
    assert client.get_cookie("lang").value == "zh_CN"
    assert_chinese(get(app, client, "/login").text)


def test_unknown_lang_falls_back_to_chinese(app, client):
    page = get(app, client, "/login?lang=fr")

    assert page.status_code == 200
    assert_chinese(page.text)
    assert client.get_cookie("lang") is None


# --- the catalog ----------------------------------------------------------------------------------


def messages(catalog: Catalog) -> list:
    return [message for message in catalog if message.id]


def test_every_message_has_an_english_translation():
    catalog = read_catalog(EN_PO)

    assert not catalog.fuzzy
    untranslated = [m.id for m in messages(catalog) if not str(m.string or "").strip()]
    fuzzy = [m.id for m in messages(catalog) if m.fuzzy]
    assert messages(catalog)
    assert untranslated == []
    assert fuzzy == []
    assert not catalog.obsolete


def test_catalog_covers_the_extracted_template():
    template = read_catalog(TEMPLATE)
    catalog = read_catalog(EN_PO)

    missing = [m.id for m in messages(template) if m.id not in catalog]
    assert missing == [], "run `make extract` and translate the new messages"


def test_placeholders_match_between_msgid_and_msgstr():
    catalog = read_catalog(EN_PO)

    for message in messages(catalog):
        assert isinstance(message.id, str), f"plural forms are not used: {message.id!r}"
        # Templates always %-format (newstyle gettext), so a stray % would break them as well.
        assert placeholders(message.string) == placeholders(message.id), message.id
        assert ("python-format" in message.flags) == bool(placeholders(message.id)), message.id
        assert [error for error in message.check(catalog)] == [], message.id


def test_compiled_catalog_translates():
    from babel.support import Translations

    translations = Translations.load(str(TRANSLATIONS), ["en"])

    assert translations.gettext("发送验证码") == "Send code"
    assert (
        translations.gettext("密码至少 %(n)d 位") % {"n": 8}
        == "Password must be at least 8 characters"
    )


def test_language_link_keeps_the_pending_login(client):
    page = client.get("/login?interaction=abc123")
    assert 'href="/login?interaction=abc123&amp;lang=en"' in page.text
