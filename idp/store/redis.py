"""Ephemeral store on Redis (production): every operation is one atomic Redis command or script."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

import redis

from idp.config import Settings
from idp.store.interface import Count, StoreUnavailableError

# INCR then set the window only on the first increment, in one script so no caller can see a
# counter without an expiry.
INCR_WITH_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# ``take``: INCR_WITH_WINDOW for each counter in turn, until one is over its limit (its place,
# from 1, is returned; 0 when none is). ARGV holds each counter's window (ms) and limit.
TAKE_COUNTS = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[2 * i - 1]) end
  if n > tonumber(ARGV[2 * i]) then return i end
end
return 0
"""

# An index is a sorted set scored by each member's expiry (ms since the epoch): expired members
# are dropped as members are added, and the set itself expires with its last member.
INDEX_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""


class RedisStore:
    """``EphemeralStore`` on Redis; keys are prefixed so one Redis can serve several apps."""

    def __init__(self, client: redis.Redis, *, prefix: str = "idp:") -> None:
        self.client = client
        self.prefix = prefix
        self._incr = client.register_script(INCR_WITH_WINDOW)
        self._take = client.register_script(TAKE_COUNTS)
        self._index_add = client.register_script(INDEX_ADD)

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

    def take(self, counts: Sequence[Count]) -> Count | None:
        if not counts:
            return None
        keys = [self.prefix + count.key for count in counts]
        args = [value for count in counts for value in (_ms(count.window), count.limit)]
        over = int(self._call(self._take, keys=keys, args=args))
        return counts[over - 1] if over else None

    def count(self, key: str) -> int:
        value = self._call(self.client.get, self.prefix + key)
        return int(value) if value is not None else 0

    def ttl(self, key: str) -> timedelta | None:
        remaining = self._call(self.client.pttl, self.prefix + key)
        return None if remaining is None or remaining < 0 else timedelta(milliseconds=remaining)

    def delete(self, key: str) -> None:
        self._call(self.client.delete, self.prefix + key)

    def index_add(self, key: str, member: str, ttl: timedelta) -> None:
        now = _now_ms()
        self._call(self._index_add, keys=[self._index(key)], args=[now, now + _ms(ttl), member])

    def index_members(self, key: str) -> list[str]:
        found = self._call(self.client.zrangebyscore, self._index(key), f"({_now_ms()}", "+inf")
        return sorted(bytes(member).decode() for member in found)

    def index_remove(self, key: str, member: str) -> None:
        self._call(self.client.zrem, self._index(key), member)

    def _index(self, key: str) -> str:
        """Indexes live apart from plain keys (a sorted set cannot share a string's name)."""
        return f"{self.prefix}index/{key}"

    @staticmethod
    def _call(function, *args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN002, ANN003, ANN205
        try:
            return function(*args, **kwargs)
        except redis.RedisError as error:
            raise StoreUnavailableError(detail=type(error).__name__) from error


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms(ttl: timedelta) -> int:
    return max(int(ttl.total_seconds() * 1000), 1)
