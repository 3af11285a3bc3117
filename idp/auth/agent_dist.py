"""The UKey agent bundles (客户端工具) the provider offers for download, stamped with its origin.

The operator puts the files built by ``make agent-dist`` (and the Windows build) in
``IDP_AGENT_DIST_DIR``. Each download is the file followed by a small trailer naming the
provider's own origin, taken from the configured issuer (never from the request), and the agent's
port, so the agent answers this provider's pages without any option (docs/ukey-protocol.md §4):

    <file> <JSON> <length of the JSON: 4 bytes, big-endian> b"UKEYCFG1"
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l

STAMP_MAGIC = b"UKEYCFG1"
STAMP_VERSION = 1
CHUNK = 1 << 16
# Names the operator's build produces: letters, digits, dot, dash, underscore; no hidden files.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AgentFile:
    """One downloadable bundle, as the user will receive it (stamp included)."""

    name: str
    path: Path
    size: int
    sha256: str

    @property
    def system(self) -> str:
        """The system the bundle is for, from its name (``ukey-agent-windows-x64.exe``)."""
        lowered = self.name.lower()
        if "windows" in lowered or lowered.endswith(".exe"):
            return str(_l("Windows 10/11 (64 位)"))
        if "linux" in lowered:
            return str(_l("Linux (x86-64, 桌面版)"))
        return str(_l("其他系统"))


def origin_of(url: str) -> str:
    """The origin of ``url`` as browsers send it: lower case, default port left out."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == DEFAULT_PORTS.get(parts.scheme):
        return f"{parts.scheme}://{shown}"
    return f"{parts.scheme}://{shown}:{port}"


def stamp(issuer: str, agent_url: str) -> bytes:
    """The trailer appended to every download: this provider's origin and the agent's port."""
    port = urlsplit(agent_url).port or 17443
    config = {"allowed_origins": [origin_of(issuer)], "port": port, "v": STAMP_VERSION}
    data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return data + struct.pack(">I", len(data)) + STAMP_MAGIC


def is_configured(directory: Path) -> bool:
    return str(directory) not in ("", ".")


@lru_cache(maxsize=32)
def _digest(path: Path, mtime_ns: int, size: int, trailer: bytes) -> str:
    """SHA-256 of the file plus its trailer; recomputed only when the file changes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    digest.update(trailer)
    return digest.hexdigest()


def list_files(directory: Path, trailer: bytes) -> list[AgentFile]:
    """The bundles in ``directory``, by name; nothing when it is unset or missing."""
    if not is_configured(directory) or not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        if not FILE_NAME.match(path.name) or not path.is_file():
            continue
        stat = path.stat()
        found.append(
            AgentFile(
                name=path.name,
                path=path,
                size=stat.st_size + len(trailer),
                sha256=_digest(path, stat.st_mtime_ns, stat.st_size, trailer),
            )
        )
    return found


def find_file(directory: Path, name: str, trailer: bytes) -> AgentFile | None:
    """The bundle called ``name``, looked up among the listed ones: a name is never joined to a
    path, so ``../`` or an absolute path cannot reach another file."""
    return next((f for f in list_files(directory, trailer) if f.name == name), None)


def stream(agent_file: AgentFile, trailer: bytes) -> Iterator[bytes]:
    """The file's bytes, then the trailer."""
    with agent_file.path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk
    yield trailer
