"""The agent finds the UKey vendor's PKCS#11 library by itself (known names in usual places)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.ukey_agent.config import ConfigError, config_from, parser
from clients.ukey_agent.modules import (
    LINUX_MODULES,
    WINDOWS_MODULES,
    candidates,
    find_module,
)
from tests.agent.helpers import ORIGIN


def present(*paths: str):
    return lambda path: path in paths


def test_sheca_names_come_first_and_softhsm_last_on_linux() -> None:
    assert LINUX_MODULES[0] == "libsheca_p11.so"
    assert LINUX_MODULES[-1] == "libsofthsm2.so"
    found = candidates("linux")
    assert found[0] == "/usr/lib/libsheca_p11.so"
    assert found[-1].endswith("/libsofthsm2.so")
    assert "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so" in found


def test_a_vendor_module_wins_over_softhsm_wherever_it_is() -> None:
    softhsm = "/usr/lib/softhsm/libsofthsm2.so"
    vendor = "/opt/longmai/lib/libgm3000_pkcs11.so"
    assert find_module("linux", present(softhsm)) == softhsm
    assert find_module("linux", present(softhsm, vendor)) == vendor


def test_windows_searches_system32_and_the_vendor_folders_of_its_program_files() -> None:
    env = {"ProgramFiles": r"D:\Programme", "ProgramFiles(x86)": r"D:\Programme (x86)"}
    found = candidates("win32", env)
    assert found[0] == r"C:\Windows\System32\SHECA_P11.dll"
    assert r"D:\Programme\SHECA\SHECA_P11.dll" in found
    assert r"D:\Programme (x86)\Longmai\mtoken_gm3000.dll" in found
    assert all(path.endswith(".dll") for path in found)
    assert {path.rsplit("\\", 1)[1] for path in found} == set(WINDOWS_MODULES)
    dll = r"C:\Windows\SysWOW64\HTP11.dll"
    assert find_module("win32", present(dll), env) == dll


def test_nothing_installed_finds_nothing() -> None:
    assert find_module("linux", present()) is None
    assert find_module("win32", present(), {}) is None


def test_the_setting_and_the_option_win_over_the_search(tmp_path: Path) -> None:
    args = parser().parse_args(["--allow-origin", ORIGIN])
    env = {"UKEY_PKCS11_MODULE": "/opt/vendor/libp11.so"}
    assert config_from(args, env).module == "/opt/vendor/libp11.so"
    args = parser().parse_args(["--allow-origin", ORIGIN, "--module", "/x/libother.so"])
    assert config_from(args, env).module == "/x/libother.so"


def test_without_any_module_the_agent_says_to_install_the_driver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("clients.ukey_agent.config.find_module", lambda platform: None)
    args = parser().parse_args(["--allow-origin", ORIGIN])
    with pytest.raises(ConfigError, match="UKey driver installed"):
        config_from(args, {})
