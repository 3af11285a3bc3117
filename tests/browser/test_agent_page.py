"""The 客户端工具 page in Chromium: it asks the local agent (run from source over a SoftHSM2 token)
whether it runs and shows it, offers the configured download, and says so when no agent runs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.pki import ORG_NAME

pytestmark = pytest.mark.browser

BUNDLE = "ukey-agent-windows-x64.exe"


@pytest.fixture
def dist_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "agent-dist"
    directory.mkdir()
    (directory / BUNDLE).write_bytes(b"MZ" + bytes(4096))
    return directory


class TestAgentRunning:
    @pytest.fixture
    def settings_overrides(
        self, provider_server: Any, ukey_agent: Any, dist_dir: Path
    ) -> dict[str, object]:
        return {
            "issuer": f"http://127.0.0.1:{provider_server.port}",
            "ukey_agent_url": ukey_agent.url,
            "agent_dist_dir": dist_dir,
        }

    def test_the_page_shows_the_running_agent_and_the_ukey(
        self, page: Any, live_provider: Any, results_dir: Path, csp_violations: list[str]
    ) -> None:
        page.goto(f"{live_provider.url}/ukey/agent")
        status = page.locator("#agent-status")
        expect(status).to_have_text(f"客户端工具已运行 · 已检测到企业 UKey: {ORG_NAME}")
        expect(status).to_have_class("agent-status running")
        button = page.get_by_role("link", name="下载客户端工具")
        expect(button).to_have_attribute("href", f"/ukey/agent/download/{BUNDLE}")
        with page.expect_download() as downloading:
            button.click()
        assert downloading.value.suggested_filename == BUNDLE
        page.screenshot(path=results_dir / "provider-ukey-agent-running.png", full_page=True)
        assert not csp_violations, csp_violations

    def test_the_english_page_says_it_runs(self, page: Any, live_provider: Any) -> None:
        page.goto(f"{live_provider.url}/ukey/agent?lang=en")
        expect(page.locator("#agent-status")).to_contain_text("The Client tool is running")


class TestNoAgent:
    @pytest.fixture
    def agent_url(self) -> Iterator[str]:
        """A loopback port that is bound but not listening: connections are refused."""
        with socket.socket() as reserved:
            reserved.bind(("127.0.0.1", 0))
            yield f"http://127.0.0.1:{reserved.getsockname()[1]}"

    @pytest.fixture
    def settings_overrides(self, provider_server: Any, agent_url: str) -> dict[str, object]:
        return {"issuer": f"http://127.0.0.1:{provider_server.port}", "ukey_agent_url": agent_url}

    def test_the_page_says_the_agent_is_not_running_and_no_file_is_offered(
        self, page: Any, live_provider: Any, results_dir: Path
    ) -> None:
        page.goto(f"{live_provider.url}/ukey/agent")
        status = page.locator("#agent-status")
        expect(status).to_have_text("客户端工具未运行")
        expect(status).to_have_class("agent-status stopped")
        expect(page.locator("#agent-no-download")).to_have_text(
            "客户端工具暂未提供下载，请联系平台管理员。"
        )
        page.screenshot(path=results_dir / "provider-ukey-agent-stopped.png", full_page=True)
