"""Development SMS gateway: every message becomes one JSON line in a local file.

Nothing leaves the machine. ``/dev/sms`` shows the file, and tests read it to get the codes a
person would read on a phone. The settings refuse this backend outside development mode.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from idp.config import Settings
from idp.sms.interface import SmsError, SmsMessage

log = logging.getLogger(__name__)


def outbox_line(message: SmsMessage, *, now: datetime) -> bytes:
    """One JSON object and its newline, with exactly the keys readers rely on."""
    record = {
        "time": now.astimezone(UTC).isoformat(timespec="seconds"),
        "phone": message.phone,
        "purpose": message.purpose,
        "text": message.text,
        "code": message.code,
    }
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` with one ``write`` under an exclusive lock.

    ``O_APPEND`` puts each write at the end even with several processes (server workers, test
    threads); the ``flock`` additionally keeps a reader holding the shared lock from ever seeing
    half a line. Mode 0600 because the lines carry live codes and passwords.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)  # closing releases the lock


def read_lines(path: Path, *, limit: int) -> list[str]:
    """The last ``limit`` non-empty lines of ``path``, oldest first, read under a shared lock."""
    try:
        with path.open(encoding="utf-8") as file:
            fcntl.flock(file.fileno(), fcntl.LOCK_SH)
            return list(deque((line for line in file if line.strip()), maxlen=limit))
    except FileNotFoundError:
        return []


class OutboxSmsGateway:
    """``SmsGateway`` writing to a JSON-lines file instead of a carrier."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        log.warning(
            "SMS gateway 'outbox' is for development only: messages are written to %s, "
            "nothing is delivered",
            self.path,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxSmsGateway:
        return cls(settings.sms_outbox)

    def send(self, message: SmsMessage) -> None:
        """Append the message; a file that cannot be written is a failed delivery."""
        try:
            append_line(self.path, outbox_line(message, now=datetime.now(UTC)))
        except OSError as error:
            raise SmsError(detail=f"outbox {self.path} not writable: {error}") from error

    def messages(self, limit: int = 100) -> list[dict[str, str]]:
        """The last ``limit`` messages, newest first."""
        lines = read_lines(self.path, limit=limit)
        return [json.loads(line) for line in reversed(lines)]
