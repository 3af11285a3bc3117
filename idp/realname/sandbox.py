"""Development real-name check: known (name, phone) pairs from a file, one ``name,phone`` a line.

A phone listed with another name is a MISMATCH; a phone not listed at all has no record, which
is "unknown" (RealNameUnavailableError), as a carrier would answer."""

from __future__ import annotations

import logging
from pathlib import Path

from idp.config import Settings
from idp.realname.interface import RealNameUnavailableError, Verdict

log = logging.getLogger(__name__)


class SandboxRealNameVerifier:
    def __init__(self, path: Path) -> None:
        self.path = path
        log.warning("real-name check 'sandbox' is for development only: pairs from %s", path)

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxRealNameVerifier:
        return cls(Path(settings.realname_sandbox_file))

    def _pairs(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        pairs = {}
        for raw in self.path.read_text(encoding="utf-8-sig").splitlines():
            line = raw.strip()
            name, _, phone = line.partition(",")
            if name and phone and not line.startswith("#"):
                pairs[phone.strip()] = name.strip()
        return pairs

    def verify(self, *, name: str, phone: str) -> Verdict:
        known = self._pairs().get(phone)
        if known is None:
            raise RealNameUnavailableError(detail="no record for this phone in the sandbox file")
        return Verdict.MATCH if known == name.strip() else Verdict.MISMATCH

    def add(self, *, name: str, phone: str) -> None:
        """Add a pair (``idp-dev setup`` and tests)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{name},{phone}\n")
