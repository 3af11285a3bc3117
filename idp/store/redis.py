"""Ephemeral store on Redis (production): every operation is one atomic Redis command or script."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import redis

from idp.config import Settings
from idp.store.interface import Count, StoreUnavailableError
from idp.store.tracking import TrackedValues

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
    """``EphemeralStore`` on Redis; keys are prefixed so one Redis can serve several apps.

    Each thread talks to Redis on a connection of its own (``_own``), made with ``client``'s
    settings: a connection taken from a shared pool is checked for unread data each time it is
    taken (three system calls) and the pool is locked around it, a third of a command's CPU
    (docs/performance.md, "Redis connections per thread"). A thread's connection closes when
    the thread ends; one the server dropped is opened again by the next command."""

    def __init__(self, client: redis.Redis, *, prefix: str = "idp:") -> None:
        self.client = client
        self.prefix = prefix
        self._threads = threading.local()
        self._incr = client.register_script(INCR_WITH_WINDOW)
        self._take = client.register_script(TAKE_COUNTS)
        self._index_add = client.register_script(INDEX_ADD)
        self._tracked = TrackedValues(self._tracking_connection)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        return cls(client)

    def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        self._call(lambda own: own.set(self.prefix + key, value, px=_ms(ttl)))

    def add(self, key: str, value: bytes, ttl: timedelta) -> bool:
        return bool(self._call(lambda own: own.set(self.prefix + key, value, px=_ms(ttl), nx=True)))

    def replace(self, key: str, value: bytes, ttl: timedelta) -> bool:
        return bool(self._call(lambda own: own.set(self.prefix + key, value, px=_ms(ttl), xx=True)))

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda own: own.get(self.prefix + key))
        return None if value is None else bytes(value)

    def get_tracked(self, key: str) -> bytes | None:
        return self._tracked.get(self.prefix + key, lambda: self.get(key))

    def consume(self, key: str) -> bytes | None:
        value = self._call(lambda own: own.getdel(self.prefix + key))
        return None if value is None else bytes(value)

    def incr(self, key: str, ttl: timedelta) -> int:
        keys, args = [self.prefix + key], [_ms(ttl)]
        return int(self._call(lambda own: self._incr(keys=keys, args=args, client=own)))

    def take(self, counts: Sequence[Count]) -> Count | None:
        if not counts:
            return None
        keys = [self.prefix + count.key for count in counts]
        args = [value for count in counts for value in (_ms(count.window), count.limit)]
        over = int(self._call(lambda own: self._take(keys=keys, args=args, client=own)))
        return counts[over - 1] if over else None

    def count(self, key: str) -> int:
        value = self._call(lambda own: own.get(self.prefix + key))
        return int(value) if value is not None else 0

    def ttl(self, key: str) -> timedelta | None:
        remaining = self._call(lambda own: own.pttl(self.prefix + key))
        return None if remaining is None or remaining < 0 else timedelta(milliseconds=remaining)

    def delete(self, key: str) -> None:
        self._call(lambda own: own.delete(self.prefix + key))

    def index_add(self, key: str, member: str, ttl: timedelta) -> None:
        now = _now_ms()
        keys, args = [self._index(key)], [str(now), str(now + _ms(ttl)), member]
        self._call(lambda own: self._index_add(keys=keys, args=args, client=own))

    def index_members(self, key: str) -> list[str]:
        since = f"({_now_ms()}"
        found = self._call(lambda own: own.zrangebyscore(self._index(key), since, "+inf"))
        return sorted(bytes(member).decode() for member in found)

    def index_remove(self, key: str, member: str) -> None:
        self._call(lambda own: own.zrem(self._index(key), member))

    def _index(self, key: str) -> str:
        """Indexes live apart from plain keys (a sorted set cannot share a string's name)."""
        return f"{self.prefix}index/{key}"

    def _own(self) -> redis.Redis:
        """This thread's client, connected when the thread first needs it."""
        own: redis.Redis | None = getattr(self._threads, "client", None)
        if own is None:
            pool = self.client.connection_pool
            own = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **pool.connection_kwargs
                ),
                single_connection_client=True,
            )
            self._threads.client = own
        return own

    def _tracking_connection(self) -> redis.Connection:
        """A connection of its own for ``TrackedValues``, with ``client``'s settings but RESP2,
        whose announcements arrive as plain messages of a subscription."""
        pool = self.client.connection_pool
        settings = {
            **pool.connection_kwargs,
            "protocol": 2,
            "maint_notifications_config": None,  # redis-py's, for RESP3 connections only
            "maint_notifications_pool_handler": None,
        }
        connection: redis.Connection = pool.connection_class(**settings)
        connection.connect()
        return connection

    def _call(self, command: Callable[[redis.Redis], Any]) -> Any:
        try:
            return command(self._own())
        except redis.RedisError as error:
            raise StoreUnavailableError(detail=type(error).__name__) from error


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ms(ttl: timedelta) -> int:
    return max(int(ttl.total_seconds() * 1000), 1)
