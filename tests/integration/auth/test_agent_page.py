"""客户端工具 (/ukey/agent): the bundles offered for download, stamped with the configured issuer's
origin, and the page an accountant follows (three steps, running check, troubleshooting)."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pytest

from clients.ukey_agent.stamp import read_stamp
from idp.auth.cert import errors as cert_errors
from tests.integration.auth import test_login_page

ISSUER = "https://localhost:8443"
english = test_login_page.english  # the English catalog fixture
WINDOWS = "ukey-agent-windows-x64.exe"
LINUX = "ukey-agent-linux-x86_64"
PROGRAM = b"MZ" + bytes(range(256)) * 300


@pytest.fixture
def dist_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "agent-dist"
    directory.mkdir()
    (directory / WINDOWS).write_bytes(PROGRAM)
    (directory / LINUX).write_bytes(b"\x7fELF" + PROGRAM)
    (directory / ".hidden").write_bytes(b"not offered")
    (directory / "sub").mkdir()
    (directory / "sub" / "inner.exe").write_bytes(b"not offered")
    (tmp_path / "secret.txt").write_text("outside the directory")
    return directory


@pytest.fixture
def settings_overrides(dist_dir: Path) -> dict[str, object]:
    return {
        "issuer": ISSUER,
        "agent_dist_dir": dist_dir,
        "ukey_agent_url": "http://127.0.0.1:17443",
    }


def download(client, name: str, **headers: str):
    return client.get(f"/ukey/agent/download/{name}", headers=headers)


def test_the_download_is_the_file_stamped_with_the_issuers_origin(client, tmp_path: Path) -> None:
    # A forged Host header changes nothing: the origin comes from the configured issuer.
    response = download(client, WINDOWS, Host="phish.example.com")
    assert response.status_code == 200
    body = response.get_data()
    assert body.startswith(PROGRAM)
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f"attachment; filename={WINDOWS}"
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    saved = tmp_path / "saved.exe"
    saved.write_bytes(body)
    assert read_stamp(saved) == {
        "allowed_origins": ["https://localhost:8443"],
        "port": 17443,
        "v": 1,
    }


def test_the_page_lists_each_file_with_its_size_and_sha256(client) -> None:
    page = client.get("/ukey/agent", headers={"Host": "phish.example.com"})
    assert page.status_code == 200
    text = page.text
    assert "phish.example.com" not in text
    for name in (WINDOWS, LINUX):
        body = download(client, name).get_data()
        assert f'href="/ukey/agent/download/{name}"' in text
        assert hashlib.sha256(body).hexdigest() in text
        assert f"{len(body) / 1024:.1f} KB" in text  # the test files are under 1 MB
    assert "Windows 10/11 (64 位)" in text
    assert "Linux (x86-64, 桌面版)" in text
    assert ".hidden" not in text and "inner.exe" not in text
    assert "暂未提供下载" not in text


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fsecret.txt",
        "%2E%2E%2Fsecret.txt",
        "..%5Csecret.txt",
        ".hidden",
        "sub%2Finner.exe",
        "sub",
        "missing.exe",
        "%2Fetc%2Fpasswd",
    ],
)
def test_only_the_listed_files_can_be_downloaded(client, name: str) -> None:
    response = download(client, name)
    assert response.status_code == 404
    assert b"outside the directory" not in response.get_data()
    assert b"not offered" not in response.get_data()


def test_a_path_outside_the_route_is_not_served(client) -> None:
    response = client.get("/ukey/agent/download/../../secret.txt")
    assert b"outside the directory" not in response.get_data()
    assert client.get("/ukey/agent/download/sub/inner.exe").status_code == 404


def test_a_file_changed_on_disk_gets_a_new_digest(client, dist_dir: Path) -> None:
    first = download(client, LINUX).get_data()
    (dist_dir / LINUX).write_bytes(b"\x7fELF new build" + PROGRAM)
    page = client.get("/ukey/agent").text
    second = download(client, LINUX).get_data()
    assert first != second
    assert hashlib.sha256(second).hexdigest() in page


def test_the_page_walks_through_three_steps_and_probes_the_agent(client) -> None:
    text = client.get("/ukey/agent").text
    assert "下载安装完成后，登录页面将显示企业 Ukey 信息" in text
    assert len(re.findall(r"<svg ", text)) == 3
    assert 'data-agent-url="http://127.0.0.1:17443"' in text
    assert "客户端工具已运行" in text  # the text the probe shows, translated by the page
    assert "/static/ukey_agent.js" in text
    assert "pip install" not in text


def test_troubleshooting_covers_every_certificate_login_error(client) -> None:
    text = html.unescape(client.get("/ukey/agent").text)
    errors = [cert_errors.CertificateLoginError]
    while errors:
        error = errors.pop()
        assert str(error.message) in text, error.__name__
        errors.extend(error.__subclasses__())
    for shown_by_the_login_page in (
        "未检测到 UKey 客户端工具。",
        "未检测到 UKey，请插入企业 UKey 后刷新本页",
        "检测到多个 UKey，请只插入一个",
        "该网站未被允许使用本机的 UKey 助手。",
        "PIN 码错误。",
        "UKey 的 PIN 码已锁定，请联系证书颁发机构解锁。",
        "UKey 操作失败，请重新插入 UKey 后重试。",
    ):
        assert shown_by_the_login_page in text


class TestNothingConfigured:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"issuer": ISSUER}

    def test_the_user_is_told_plainly_and_the_operator_what_to_set(self, client) -> None:
        text = client.get("/ukey/agent").text
        assert "客户端工具暂未提供下载，请联系平台管理员。" in text
        assert "用 IDP_AGENT_DIST_DIR 设置该目录" in text
        assert "/ukey/agent/download/" not in text

    def test_no_file_can_be_downloaded(self, client) -> None:
        assert download(client, WINDOWS).status_code == 404


class TestEmptyDirectory:
    @pytest.fixture
    def settings_overrides(self, tmp_path: Path) -> dict[str, object]:
        (tmp_path / "empty").mkdir()
        return {"issuer": ISSUER, "agent_dist_dir": tmp_path / "empty"}

    def test_the_operator_learns_the_directory_is_empty_without_its_path(
        self, client, tmp_path: Path
    ) -> None:
        text = client.get("/ukey/agent").text
        assert "客户端工具暂未提供下载" in text
        assert "IDP_AGENT_DIST_DIR 所设目录中没有客户端工具文件" in text
        assert str(tmp_path) not in text


def test_the_english_page_is_translated(client, english: dict[str, str]) -> None:
    text = html.unescape(client.get("/ukey/agent?lang=en").text)
    assert english["客户端工具已运行"] in text
    assert english["三步完成安装"] in text
    assert "三步完成安装" not in text
