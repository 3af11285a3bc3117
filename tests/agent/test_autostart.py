"""``--install`` / ``--uninstall``: the agent starts with the desktop session (in a temporary
HOME; the Windows task is checked through the schtasks command it runs)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from clients.ukey_agent import __main__ as agent_main
from clients.ukey_agent import autostart
from clients.ukey_agent.autostart import Place, desktop_entry_text, install, uninstall


def linux(home: Path, **environ: str) -> Place:
    return Place(platform="linux", home=home, environ=environ)


class Schtasks:
    """Records schtasks commands and answers with the given exit code."""

    def __init__(self, returncode: int = 0) -> None:
        self.commands: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.returncode, b"", b"ERROR: access denied")


def test_install_from_source_writes_an_xdg_autostart_entry(tmp_path: Path) -> None:
    place = linux(tmp_path)
    where = install(
        ["--allow-origin", "https://login.example.cn"],
        place=place,
        frozen=False,
        executable="/opt/py 3/bin/python",
    )
    entry = tmp_path / ".config" / "autostart" / "ukey-agent.desktop"
    assert where == str(entry)
    text = entry.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\nType=Application\n")
    assert (
        'Exec="/opt/py 3/bin/python" -m clients.ukey_agent --allow-origin '
        "https://login.example.cn\n"
    ) in text
    assert "Name=UKey 客户端工具\n" in text


def test_xdg_config_home_is_honoured(tmp_path: Path) -> None:
    place = linux(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    install([], place=place, frozen=False, executable="/usr/bin/python3")
    assert (tmp_path / "cfg" / "autostart" / "ukey-agent.desktop").is_file()


def test_the_bundle_copies_itself_out_of_downloads_and_starts_without_options(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "Downloads" / "ukey-agent-linux-x86_64"
    bundle.parent.mkdir()
    bundle.write_bytes(b"program+stamp")
    place = linux(tmp_path)
    install([], place=place, frozen=True, executable=str(bundle))
    copy = tmp_path / ".local" / "share" / "ukey-agent" / "ukey-agent-linux-x86_64"
    assert copy.read_bytes() == b"program+stamp"
    assert f"Exec={copy}\n" in place.desktop_entry.read_text()
    # Started from the copy at the next login, it rewrites the same entry and copies nothing.
    install([], place=place, frozen=True, executable=str(copy))
    assert f"Exec={copy}\n" in place.desktop_entry.read_text()


def test_a_new_download_replaces_the_copy_that_is_running(tmp_path: Path) -> None:
    """The copy started at login is running (Linux refuses to open it for writing, even for
    root); the new version still takes its place."""
    place = linux(tmp_path)
    running = place.app_dir / "ukey-agent-linux-x86_64"
    running.parent.mkdir(parents=True)
    shutil.copy2("/bin/sleep", running)
    update = tmp_path / "Downloads" / running.name
    update.parent.mkdir()
    update.write_bytes(b"version 2")
    process = subprocess.Popen([str(running), "30"])
    try:
        install([], place=place, frozen=True, executable=str(update))
    finally:
        process.kill()
        process.wait()
    assert running.read_bytes() == b"version 2"
    assert list(place.app_dir.iterdir()) == [running]


def test_options_given_to_the_bundle_are_kept_for_the_next_login(tmp_path: Path) -> None:
    bundle = tmp_path / "ukey-agent-linux-x86_64"
    bundle.write_bytes(b"program+stamp")
    place = linux(tmp_path)
    install(["--module", "/opt/k/libk.so"], place=place, frozen=True, executable=str(bundle))
    copy = place.app_dir / bundle.name
    assert f"Exec={copy} --module /opt/k/libk.so\n" in place.desktop_entry.read_text()


def test_uninstall_removes_the_entry_and_says_when_there_was_none(tmp_path: Path) -> None:
    place = linux(tmp_path)
    install([], place=place, frozen=False, executable="/usr/bin/python3")
    assert uninstall(place=place) is True
    assert not place.desktop_entry.exists()
    assert uninstall(place=place) is False


def test_windows_install_creates_a_logon_task_for_the_user(tmp_path: Path) -> None:
    bundle = tmp_path / "ukey-agent-windows-x64.exe"
    bundle.write_bytes(b"MZ program")
    local = tmp_path / "Local"
    place = Place(platform="win32", home=tmp_path, environ={"LOCALAPPDATA": str(local)})
    schtasks = Schtasks()
    install([], place=place, frozen=True, executable=str(bundle), run=schtasks)
    copy = local / "UKeyAgent" / "ukey-agent-windows-x64.exe"
    assert copy.read_bytes() == b"MZ program"
    assert schtasks.commands == [
        [
            "schtasks", "/Create", "/F", "/TN", "UKey Agent (ukey-agent)",
            "/SC", "ONLOGON", "/RL", "LIMITED", "/TR", str(copy),
        ]
    ]  # fmt: skip
    assert not (tmp_path / ".config").exists()


def test_windows_paths_with_spaces_are_quoted_for_the_task() -> None:
    command = autostart.schtasks_create([r"C:\Users\Li Si\AppData\Local\UKeyAgent\a.exe"])
    assert command[-1] == r'"C:\Users\Li Si\AppData\Local\UKeyAgent\a.exe"'


def test_windows_uninstall_deletes_the_task_and_a_refusal_is_reported(tmp_path: Path) -> None:
    place = Place(platform="win32", home=tmp_path, environ={})
    schtasks = Schtasks()
    assert uninstall(place=place, run=schtasks) is True
    assert schtasks.commands == [["schtasks", "/Delete", "/F", "/TN", "UKey Agent (ukey-agent)"]]
    with pytest.raises(autostart.AutostartError, match="access denied"):
        install([], place=place, frozen=False, executable="python.exe", run=Schtasks(1))


def test_desktop_entry_quoting_follows_the_specification() -> None:
    text = desktop_entry_text(["/a b/py", 'say "$hi"', "100%", "plain"])
    assert 'Exec="/a b/py" "say \\"\\$hi\\"" "100%%" plain\n' in text


def test_the_command_line_installs_and_uninstalls_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    entry = tmp_path / ".config" / "autostart" / "ukey-agent.desktop"
    served: list[object] = []
    monkeypatch.setattr(agent_main, "open_signer", lambda config: "signer")
    monkeypatch.setattr(agent_main, "_serve", lambda config, signer: served.append(config))
    agent_main.main(
        ["--install", "--allow-origin", "https://login.example.cn", "--module", "/x.so"]
    )
    assert served, "--install goes on to run the agent"
    assert "--allow-origin https://login.example.cn --module /x.so\n" in entry.read_text()
    assert "--install" not in entry.read_text()
    agent_main.main(["--uninstall"])
    assert not entry.exists()
    assert "已取消开机自动启动" in capsys.readouterr().out
