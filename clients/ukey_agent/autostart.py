"""Starting the agent with the desktop session (``--install`` / ``--uninstall``).

The login page needs the agent running whenever the accountant opens it, so the agent registers
itself once: on Windows a Task Scheduler task that runs at logon (``schtasks``: per user, no
administrator rights, no service), on Linux an XDG autostart entry
(``~/.config/autostart/ukey-agent.desktop``), which GNOME, KDE, Xfce and the other desktops honour.

The downloaded bundle first copies itself to a per-user program directory, so the entry does not
point into the Downloads folder (where it would be cleaned up). Run from source, the entry starts
the same Python with ``-m clients.ukey_agent`` and the options given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TASK_NAME = "UKey Agent (ukey-agent)"
DESKTOP_FILE = "ukey-agent.desktop"
APP_DIR_NAME = "UKeyAgent"
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[bytes]"]


class AutostartError(RuntimeError):
    """The entry could not be written or removed; the message says why."""


@dataclass(frozen=True)
class Place:
    """Where things go for this user on this platform."""

    platform: str
    home: Path
    environ: Mapping[str, str]

    @classmethod
    def here(cls) -> Place:
        return cls(platform=sys.platform, home=Path.home(), environ=os.environ)

    @property
    def app_dir(self) -> Path:
        """Per-user program directory: %LOCALAPPDATA%\\UKeyAgent, ~/.local/share/ukey-agent."""
        if self.platform == "win32":
            local = self.environ.get("LOCALAPPDATA") or str(self.home / "AppData" / "Local")
            return Path(local) / APP_DIR_NAME
        data = self.environ.get("XDG_DATA_HOME") or str(self.home / ".local" / "share")
        return Path(data) / "ukey-agent"

    @property
    def desktop_entry(self) -> Path:
        config = self.environ.get("XDG_CONFIG_HOME") or str(self.home / ".config")
        return Path(config) / "autostart" / DESKTOP_FILE


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(command), capture_output=True, check=False)  # noqa: S603


def launch_command(options: Sequence[str], *, frozen: bool, executable: str) -> list[str]:
    """How the session starts the agent: the bundle (its configuration is stamped into it), or
    this Python with the module; either with the options given now (none after a double-click)."""
    if frozen:
        return [executable, *options]
    return [executable, "-m", "clients.ukey_agent", *options]


def _desktop_quote(argument: str) -> str:
    """An argument for a desktop entry's ``Exec`` key (Desktop Entry Specification, "The Exec
    key"): quoted when it has a reserved character, with ``"`$\\`` escaped inside quotes."""
    if argument and not any(c in argument for c in " \t\n\"'\\><~|&;$*?#()`%="):
        return argument
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in argument)
    return f'"{escaped.replace("%", "%%")}"'


def desktop_entry_text(command: Sequence[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=UKey 客户端工具\n"
        "Name[en]=UKey client tool\n"
        "Comment=UKey 登录助手 (ukey-agent)\n"
        f"Exec={' '.join(_desktop_quote(a) for a in command)}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def schtasks_create(command: Sequence[str]) -> list[str]:
    """A task that runs at this user's logon with normal rights, replacing an older one."""
    return [
        "schtasks", "/Create", "/F", "/TN", TASK_NAME,
        "/SC", "ONLOGON", "/RL", "LIMITED",
        "/TR", subprocess.list2cmdline(list(command)),
    ]  # fmt: skip


def schtasks_delete() -> list[str]:
    return ["schtasks", "/Delete", "/F", "/TN", TASK_NAME]


def installed_copy(executable: Path, place: Place) -> Path:
    """The bundle copied to the per-user program directory (kept as is when already there).

    Copied beside the target and renamed over it: Linux refuses to overwrite a program that is
    running (the previous version, started at login), but lets a new file take its name."""
    target = place.app_dir / executable.name
    if executable.resolve() != target.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        try:
            shutil.copy2(executable, partial)
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise AutostartError(
                f"无法复制到 {target}（客户端工具是否已在运行？）：{error}"
            ) from error
    return target


def install(
    options: Sequence[str],
    *,
    place: Place,
    frozen: bool,
    executable: str,
    run: Runner = _run,
) -> str:
    """Write the autostart entry; returns where it was written (for the log)."""
    if frozen:
        executable = str(installed_copy(Path(executable), place))
    command = launch_command(options, frozen=frozen, executable=executable)
    if place.platform == "win32":
        result = run(schtasks_create(command))
        if result.returncode != 0:
            raise AutostartError(f"schtasks failed: {result.stderr.decode(errors='replace')}")
        return f"Task Scheduler: {TASK_NAME}"
    entry = place.desktop_entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(desktop_entry_text(command), encoding="utf-8")
    return str(entry)


def uninstall(*, place: Place, run: Runner = _run) -> bool:
    """Remove the autostart entry; False when there was none."""
    if place.platform == "win32":
        return run(schtasks_delete()).returncode == 0
    try:
        place.desktop_entry.unlink()
    except FileNotFoundError:
        return False
    return True


def is_frozen() -> bool:
    """Running as the PyInstaller bundle (not from source)."""
    return bool(getattr(sys, "frozen", False))


def forwarded_options(argv: Sequence[str]) -> list[str]:
    """The command-line options to repeat in the autostart entry: all but ``--install``."""
    return [a for a in argv if a != "--install"]
