"""The built agent bundle (``make agent-dist``) works as downloaded: stamped by the provider,
started without options, ``/status`` from a SoftHSM2 token, a signed challenge.

``make test`` does not build the bundle (it takes about half a minute and needs PyInstaller), so
this test is skipped, with the reason, until ``make agent-dist`` has been run (CI builds it
first: under IDP_TEST_REQUIRE_ALL=1 a missing bundle fails);
``make agent-dist-check`` runs the same check by itself.
"""

from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

import pytest

from tests.agent.bundle_smoke import smoke
from tests.conftest import missing

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "dist" / "agent" / f"ukey-agent-linux-{platform.machine()}"


@pytest.fixture
def bundle(module: str) -> Path:
    if importlib.util.find_spec("PyInstaller") is None:
        missing("PyInstaller is not installed (pip install -e '.[agent-dist]')")
    if not BUNDLE.is_file():
        missing(f"the agent bundle is not built: run make agent-dist (expects {BUNDLE})")
    return BUNDLE


def test_the_downloaded_bundle_answers_status_and_signs(bundle: Path, tmp_path: Path) -> None:
    result = smoke(bundle, tmp_path)
    assert result.status["agent"] == "ukey-agent"
    assert result.started_in < 10
    assert "starts with the desktop session" in result.log
