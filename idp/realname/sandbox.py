"""Development real-name check: known (name, phone) pairs from a file, one ``name,phone`` a line.

A listed pair is a MATCH; anything else — a listed phone with another name, or a phone not
listed at all — is a MISMATCH, so the console shows the manual's 校验不通过 text as it would for a
stranger's number. Outages are simulated on request only: a line ``!unavailable`` makes every
check answer "service unavailable", and ``!unavailable,<phone>`` does so for that phone alone
(to try the console's 503 page). Lines starting with ``#`` are comments."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from idp.config import Settings
from idp.realname.interface import RealNameUnavailableError, Verdict

log = logging.getLogger(__name__)

OUTAGE = "!unavailable"


@dataclass
class SandboxFile:
    """What the sandbox file says: the known pairs and the simulated outages."""

    pairs: dict[str, str] = field(default_factory=dict)  # phone -> name
    outage_phones: set[str] = field(default_factory=set)
    outage: bool = False

    def read_line(self, line: str) -> None:
        first, _, second = (part.strip() for part in line.partition(","))
        if first == OUTAGE:
            if second:
                self.outage_phones.add(second)
            else:
                self.outage = True
        elif first and second and not first.startswith("#"):
            self.pairs[second] = first


class SandboxRealNameVerifier:
    def __init__(self, path: Path) -> None:
        self.path = path
        log.warning("real-name check 'sandbox' is for development only: pairs from %s", path)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxRealNameVerifier:
        return cls(Path(settings.realname_sandbox_file))

    def _read(self) -> SandboxFile:
        content = SandboxFile()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8-sig").splitlines():
                content.read_line(line.strip())
        return content

    def verify(self, *, name: str, phone: str) -> Verdict:
        content = self._read()
        if content.outage or phone in content.outage_phones:
            raise RealNameUnavailableError(detail="simulated outage (sandbox file)")
        known = content.pairs.get(phone)
        return Verdict.MATCH if known == name.strip() else Verdict.MISMATCH

    def add(self, *, name: str, phone: str) -> None:
        """Add a pair (``idp-dev setup`` and tests)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{name},{phone}\n")
