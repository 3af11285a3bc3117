"""Values a process keeps in memory while Redis tells it of every change of their keys.

Redis's server-assisted client-side caching (``CLIENT TRACKING``, broadcast mode, Redis 6 and
later): Redis announces every change of a key that starts with a tracked prefix, whoever made
it: a write, a deletion, its expiry or eviction, a flush of the database. A tracked read
(``TrackedValues.get``) is answered from memory while no announcement has named its key since
it was read from Redis. Each read first takes in what has arrived, without waiting, so a change
holds here at the first read after its announcement: Redis sends it in the same pass in which it
answers the write, a network hop away (docs/performance.md, "The clients' version announced").

Two connections per process, both RESP2: the listener, subscribed to the announcements
(``__redis__:invalidate``), and the owner, whose tracking sends its announcements to the
listener. Announcements stop when either closes, so either one closing drops every kept
value and both are set up again; meanwhile every read goes to Redis. A closed connection is
noticed at the next read (its socket has something to read: the end), one lost without a word
by the ping every ``PING_EVERY`` seconds (the owner answers it at once, the listener by its
next read). A setup that fails (Redis down, or refusing ``CLIENT TRACKING``: an ACL, a proxy)
is tried again every ``RETRY_AFTER`` seconds and logged once, until one succeeds.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

INVALIDATE_CHANNEL = "__redis__:invalidate"
PING_EVERY = 5.0  # seconds between pings of the two connections
RETRY_AFTER = 1.0  # seconds before setting up again after a failure

Connect = Callable[[], redis.Connection]


class TrackedValues:
    """The tracked values of one process; its threads share them under one lock."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._prefixes: set[str] = set()
        self._values: dict[str, bytes | None] = {}
        # Counts the drops: a value read from Redis is kept only if none happened meanwhile
        # (an announcement taken in by another thread may be about a change after that read).
        self._generation = 0
        self._announcer: Announcer | None = None
        self._retry_at = 0.0

    def get(self, key: str, read: Callable[[], bytes | None]) -> bytes | None:
        """``key``'s value: kept, or ``read`` from Redis (and kept while tracked)."""
        with self._lock:
            generation = self._tracking(key)
            if generation is not None and key in self._values:
                return self._values[key]
        value = read()  # after tracking started: a change from now on is announced
        with self._lock:
            if generation is not None and generation == self._generation:
                self._values[key] = value
        return value

    def _tracking(self, key: str) -> int | None:
        """The generation under which ``key`` is tracked now, after taking in what was
        announced; None while tracking cannot be set up."""
        if key not in self._prefixes:
            self._prefixes.add(key)
            self._stop()  # set up again, this key among the prefixes
        if self._announcer is not None:
            try:
                if self._announcer.changes():
                    self._drop()
            except (redis.RedisError, OSError):
                self._stop()  # and set up again at once
        if self._announcer is None:
            if time.monotonic() < self._retry_at:
                return None
            try:
                self._announcer = Announcer(self._connect, sorted(self._prefixes))
            except (redis.RedisError, OSError) as error:
                if not self._retry_at:  # once, until tracking works again
                    log.warning("Redis tracking unavailable, reading from Redis: %r", error)
                self._retry_at = time.monotonic() + RETRY_AFTER
                return None
            self._retry_at = 0.0
        return self._generation

    def _stop(self) -> None:
        if self._announcer is not None:
            self._announcer.close()
            self._announcer = None
        self._drop()

    def _drop(self) -> None:
        self._values.clear()
        self._generation += 1


class Announcer:
    """The listener and the owner (see the module's docstring), tracking ``prefixes``."""

    def __init__(self, connect: Connect, prefixes: list[str]) -> None:
        self.listener = connect()
        try:
            self.owner = connect()
        except BaseException:
            self.listener.disconnect()
            raise
        try:
            self._track(prefixes)
        except BaseException:
            self.close()
            raise
        self.ping_at = time.monotonic() + PING_EVERY
        self.pong_awaited = False

    def _track(self, prefixes: list[str]) -> None:
        self.listener.send_command("CLIENT", "ID")
        listener_id = self.listener.read_response()
        self.listener.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
        self.listener.read_response()
        tracked = [part for prefix in prefixes for part in ("PREFIX", prefix)]
        self.owner.send_command(
            "CLIENT", "TRACKING", "ON", "REDIRECT", listener_id, "BCAST", *tracked
        )
        self.owner.read_response()
        # One poll of both sockets per read: redis-py's ``can_read`` costs three system calls
        # on each (3.5 µs), and there is seldom anything to read.
        self.sockets = select.poll()
        for connection in (self.listener, self.owner):
            if connection._sock is None:
                raise redis.ConnectionError("the tracking connection closed")
            self.sockets.register(connection._sock, select.POLLIN)

    def changes(self) -> bool:
        """Whether a change was announced since the last call. Raises ``redis.RedisError``
        once either connection closed or the listener missed a ping."""
        changed = False
        if self.sockets.poll(0):  # else nothing arrived, and nothing is left from a read
            if self.owner.can_read(timeout=0):  # (at its end it raises) it is sent nothing
                raise redis.ConnectionError("the tracking connection was sent data")
            while self.listener.can_read(timeout=0):  # until nothing is left, read or not
                message = self.listener.read_response()
                if message[0] == b"message":  # one or more keys changed, or a flush
                    changed = True
                elif message[0] == b"pong":
                    self.pong_awaited = False
        self._ping_when_due()
        return changed

    def _ping_when_due(self) -> None:
        now = time.monotonic()
        if now < self.ping_at:
            return
        if self.pong_awaited:
            raise redis.ConnectionError("the listener did not answer its last ping")
        self.owner.send_command("PING")
        self.owner.read_response()
        self.listener.send_command("PING")  # answered among the announcements
        self.pong_awaited = True
        self.ping_at = now + PING_EVERY

    def close(self) -> None:
        self.listener.disconnect()
        self.owner.disconnect()
