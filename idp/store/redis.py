"""Ephemeral store on Redis (production): every operation is one atomic Redis command or script."""

from __future__ import annotations

from datetime import timedelta

import redis

from idp.config import Settings
from idp.store.interface import StoreUnavailableError

# INCR then set the window only on the first increment, in one script so no caller can see a
# counter without an expiry.
INCR_WITH_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisStore:
    """``EphemeralStore`` on Redis; keys are prefixed so one Redis can serve several apps."""

    def __init__(self, client: redis.Redis, *, prefix: str = "idp:") -> None:
        self.client = client
        self.prefix = prefix
        self._incr = client.register_script(INCR_WITH_WINDOW)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        return cls(client)

    def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        self._call(self.client.set, self.prefix + key, value, px=_ms(ttl))

    def add(self, key: str, value: bytes, ttl: timedelta) -> bool:
        return bool(self._call(self.client.set, self.prefix + key, value, px=_ms(ttl), nx=True))

    def replace(self, key: str, value: bytes, ttl: timedelta) -> bool:
        return bool(self._call(self.client.set, self.prefix + key, value, px=_ms(ttl), xx=True))

    def get(self, key: str) -> bytes | None:
        value = self._call(self.client.get, self.prefix + key)
        return None if value is None else bytes(value)

    def consume(self, key: str) -> bytes | None:
        value = self._call(self.client.getdel, self.prefix + key)
        return None if value is None else bytes(value)

    def incr(self, key: str, ttl: timedelta) -> int:
        return int(self._call(self._incr, keys=[self.prefix + key], args=[_ms(ttl)]))

    def count(self, key: str) -> int:
        value = self._call(self.client.get, self.prefix + key)
        return int(value) if value is not None else 0

    def ttl(self, key: str) -> timedelta | None:
        remaining = self._call(self.client.pttl, self.prefix + key)
        return None if remaining is None or remaining < 0 else timedelta(milliseconds=remaining)

    def delete(self, key: str) -> None:
        self._call(self.client.delete, self.prefix + key)

    @staticmethod
    def _call(function, *args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN002, ANN003, ANN205
        try:
            return function(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreUnavailableError(detail=type(error).__name__) from error


def _ms(ttl: timedelta) -> int:
    return max(int(ttl.total_seconds() * 1000), 1)
