"""The ephemeral store: short-lived security state (SMS codes, counters, login sessions, pending
authorization requests, one-time values) shared by every provider process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import NamedTuple, Protocol

from idp.errors import ServiceUnavailableError


class StoreUnavailableError(ServiceUnavailableError):
    """The store cannot be reached; security checks fail closed on this error."""

    code = "store_unavailable"


class Count(NamedTuple):
    """A counter of the store (``incr``) and how many it admits within its window."""

    key: str
    limit: int
    window: timedelta


class EphemeralStore(Protocol):
    def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        """Store ``value`` under ``key`` for ``ttl``, replacing any previous value."""

    def add(self, key: str, value: bytes, ttl: timedelta) -> bool:
        """Store only if ``key`` is absent; True when this call stored it (atomic)."""

    def replace(self, key: str, value: bytes, ttl: timedelta) -> bool:
        """Store only if ``key`` is live, replacing its value and lifetime; True when this call
        replaced it (atomic). A key deleted or expired meanwhile stays gone."""

    def get(self, key: str) -> bytes | None:
        """The live value, or None when absent or expired."""

    def get_tracked(self, key: str) -> bytes | None:
        """``get`` for a key read at most requests and seldom written: a backend that is told
        of every change of the key (Redis) answers from memory until the next change."""

    def consume(self, key: str) -> bytes | None:
        """Atomically get and delete: of concurrent callers exactly one receives the value."""

    def incr(self, key: str, ttl: timedelta) -> int:
        """Atomically add one and return the new count; the window ``ttl`` starts at the first
        increment and is not extended by later ones."""

    def take(self, counts: Sequence[Count]) -> Count | None:
        """``incr`` each counter in turn and stop at the first whose new count is over its
        limit: that one is returned, and the counters after it are left as they were; None
        when every counter stayed within its limit. One round trip where the store allows."""

    def count(self, key: str) -> int:
        """The live count ``incr`` has reached under ``key``; 0 when absent or expired."""

    def ttl(self, key: str) -> timedelta | None:
        """Remaining lifetime of a live key, or None."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def index_add(self, key: str, member: str, ttl: timedelta) -> None:
        """Add ``member`` to the index (a set of strings) named ``key`` for ``ttl``; each member
        has a lifetime of its own, and adding it again replaces it. An index lists what lives
        under other keys (an account's login sessions), so it can be found by its owner."""

    def index_members(self, key: str) -> list[str]:
        """The live members of the index ``key``, sorted; [] when it has none."""

    def index_remove(self, key: str, member: str) -> None:
        """Remove ``member`` from the index ``key`` if present."""
