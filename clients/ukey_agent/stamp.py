"""The configuration the provider stamps into the agent it serves for download.

The provider appends a small trailer to the executable as it sends it (docs/ukey-protocol.md §4):

    <executable bytes> <JSON, UTF-8> <length of the JSON: 4 bytes, big-endian> b"UKEYCFG1"

The JSON is ``{"v": 1, "allowed_origins": ["https://login.example.cn"], "port": 17443}``: the
provider's own origin (its issuer), so the accountant starts the agent without any option and it
answers only that provider's pages. The executable ignores data after its own end (PyInstaller's
bootloader finds its archive from its own cookie), so the stamped file runs unchanged.

The trailer is not signed: it travels inside the file the user downloaded from the provider over
HTTPS, so whoever could change it could as well change the program itself.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAGIC = b"UKEYCFG1"
LENGTH = struct.Struct(">I")
MAX_CONFIG = 4096
"""A stamped configuration is about 100 bytes; anything longer is not ours."""


class StampError(ValueError):
    """The trailer is present but unusable; the message says why."""


def trailer(config: dict[str, Any]) -> bytes:
    """The bytes to append to the executable for ``config`` (the provider does the same)."""
    data = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_CONFIG:
        raise StampError(f"configuration of {len(data)} bytes is longer than {MAX_CONFIG}")
    return data + LENGTH.pack(len(data)) + MAGIC


def read_stamp(path: Path) -> dict[str, Any] | None:
    """The configuration stamped into the file at ``path``, or None when it carries none."""
    tail_size = LENGTH.size + len(MAGIC)
    with path.open("rb") as file:
        file.seek(0, 2)
        size = file.tell()
        if size < tail_size:
            return None
        file.seek(size - tail_size)
        tail = file.read(tail_size)
        if tail[LENGTH.size :] != MAGIC:
            return None
        (length,) = LENGTH.unpack(tail[: LENGTH.size])
        if length > MAX_CONFIG or length > size - tail_size:
            raise StampError(f"stamped configuration length {length} is not plausible")
        file.seek(size - tail_size - length)
        data = file.read(length)
    try:
        config = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StampError(f"stamped configuration is not JSON: {error}") from error
    if not isinstance(config, dict) or config.get("v") != 1:
        raise StampError("stamped configuration is not version 1")
    return config
