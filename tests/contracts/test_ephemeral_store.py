"""Contract of ``EphemeralStore``: one suite run against every implementation on this machine.

Variants: ``SqlStore`` on SQLite (the embedded default), ``SqlStore`` on PostgreSQL and
``RedisStore``. A missing PostgreSQL or Redis skips, and fails under IDP_TEST_REQUIRE_ALL=1.
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from sqlalchemy import delete

from idp.db import make_engine
from idp.errors import IdpError
from idp.store import tracking
from idp.store.interface import Count, EphemeralStore, StoreUnavailableError
from idp.store.redis import RedisStore
from idp.store.sql import TABLE, SqlStore

LONG = timedelta(seconds=60)
SHORT = timedelta(seconds=1)
THREADS = 8


@pytest.fixture(
    params=[
        "sql:sqlite",
        pytest.param("sql:postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def store(request: pytest.FixtureRequest, db_url: str) -> Iterator[EphemeralStore]:
    """A fresh, empty store of each implementation (``db_url`` is the SQLite default)."""
    if request.param == "redis":
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        prefix = f"test:{uuid.uuid4().hex}:"
        yield RedisStore(client, prefix=prefix)
        stale = list(client.scan_iter(match=prefix + "*"))
        if stale:
            client.delete(*stale)
        client.close()
        return
    url = db_url if request.param == "sql:sqlite" else request.getfixturevalue("postgres_database")
    engine = make_engine(url)
    yield SqlStore(engine)
    with engine.begin() as conn:
        conn.execute(delete(TABLE))
    engine.dispose()


def run_together(count: int, action: Callable[[], object]) -> list[object]:
    """Run ``action`` in ``count`` threads released at the same moment; exceptions propagate."""
    barrier = threading.Barrier(count)

    def call() -> object:
        barrier.wait(timeout=10)
        return action()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(call) for _ in range(count)]
        return [future.result(timeout=60) for future in futures]


# --- put / get / delete ----------------------------------------------------------------------


def test_get_returns_what_put_stored(store: EphemeralStore) -> None:
    value = bytes(range(256))
    store.put("k", value, LONG)

    assert store.get("k") == value
    assert store.get("other") is None


def test_put_replaces_value_and_lifetime(store: EphemeralStore) -> None:
    store.put("k", b"first", LONG)
    store.put("k", b"second", timedelta(hours=1))

    assert store.get("k") == b"second"
    remaining = store.ttl("k")
    assert remaining is not None and remaining > LONG


def test_concurrent_puts_of_one_key_all_succeed(store: EphemeralStore) -> None:
    values = [f"value-{n}".encode() for n in range(THREADS)]
    pending = iter(values)
    lock = threading.Lock()

    def put_next() -> None:
        with lock:
            value = next(pending)
        store.put("k", value, LONG)

    run_together(THREADS, put_next)

    assert store.get("k") in values


def test_delete_removes_and_ignores_absent_keys(store: EphemeralStore) -> None:
    store.put("k", b"v", LONG)
    store.put("kept", b"v", LONG)

    store.delete("k")
    store.delete("never-stored")

    assert store.get("k") is None
    assert store.ttl("k") is None
    assert store.get("kept") == b"v"


def test_ttl_reports_remaining_lifetime(store: EphemeralStore) -> None:
    store.put("k", b"v", LONG)

    remaining = store.ttl("k")

    assert remaining is not None
    assert LONG - timedelta(seconds=5) < remaining <= LONG
    assert store.ttl("absent") is None


# --- add -------------------------------------------------------------------------------------


def test_add_stores_only_when_absent(store: EphemeralStore) -> None:
    assert store.add("k", b"first", LONG) is True
    assert store.add("k", b"second", LONG) is False
    assert store.get("k") == b"first"

    store.delete("k")
    assert store.add("k", b"third", LONG) is True
    assert store.get("k") == b"third"


def test_add_under_concurrency_has_one_winner(store: EphemeralStore) -> None:
    results = run_together(THREADS, lambda: store.add("k", b"v", LONG))

    assert sorted(results, key=bool) == [False] * (THREADS - 1) + [True]


# --- replace ---------------------------------------------------------------------------------


def test_replace_stores_only_when_present(store: EphemeralStore) -> None:
    assert store.replace("k", b"first", LONG) is False
    assert store.get("k") is None

    store.put("k", b"first", SHORT)
    assert store.replace("k", b"second", LONG) is True
    assert store.get("k") == b"second"
    remaining = store.ttl("k")
    assert remaining is not None and remaining > SHORT


def test_replace_never_revives_a_deleted_or_expired_key(store: EphemeralStore) -> None:
    store.put("deleted", b"v", LONG)
    store.delete("deleted")
    store.put("expired", b"v", timedelta(milliseconds=1))
    time.sleep(0.01)  # the millisecond lifetime is over; not a race the assertion depends on

    assert store.replace("deleted", b"again", LONG) is False
    assert store.replace("expired", b"again", LONG) is False
    assert store.get("deleted") is None
    assert store.get("expired") is None


def test_replace_racing_delete_never_leaves_the_key(store: EphemeralStore) -> None:
    """Whichever runs first, the key ends deleted: a replace after the delete does nothing."""
    actions: list[Callable[[], object]] = [
        lambda: store.replace("k", b"again", LONG),
        lambda: store.delete("k"),
    ]
    for _round in range(20):
        store.put("k", b"v", LONG)
        barrier = threading.Barrier(len(actions))
        with ThreadPoolExecutor(max_workers=len(actions)) as pool:
            futures = [pool.submit(released_by, barrier, action) for action in actions]
            for future in futures:
                future.result(timeout=60)

        assert store.get("k") is None


def released_by(barrier: threading.Barrier, action: Callable[[], object]) -> object:
    barrier.wait(timeout=10)
    return action()


# --- consume ---------------------------------------------------------------------------------


def test_consume_returns_value_once(store: EphemeralStore) -> None:
    store.put("k", b"one-time", LONG)

    assert store.consume("k") == b"one-time"
    assert store.consume("k") is None
    assert store.get("k") is None
    assert store.consume("absent") is None


@pytest.mark.parametrize("round_", range(3))
def test_consume_under_concurrency_has_exactly_one_winner(
    store: EphemeralStore, round_: int
) -> None:
    key = f"code-{round_}"
    store.put(key, b"secret", LONG)

    results = run_together(THREADS, lambda: store.consume(key))

    assert sorted(results, key=lambda r: r is not None) == [None] * (THREADS - 1) + [b"secret"]
    assert store.get(key) is None


# --- incr ------------------------------------------------------------------------------------


def test_incr_counts_from_one_per_key(store: EphemeralStore) -> None:
    assert [store.incr("a", LONG) for _ in range(3)] == [1, 2, 3]
    assert store.incr("b", LONG) == 1

    remaining = store.ttl("a")
    assert remaining is not None and remaining <= LONG


def test_count_reads_what_incr_reached_without_changing_it(store: EphemeralStore) -> None:
    assert store.count("never") == 0
    store.incr("counted", timedelta(seconds=30))
    store.incr("counted", timedelta(seconds=30))

    assert store.count("counted") == 2
    assert store.count("counted") == 2
    store.delete("counted")
    assert store.count("counted") == 0


def test_incr_is_atomic_under_concurrency(store: EphemeralStore) -> None:
    per_thread = 25

    def increments() -> list[int]:
        return [store.incr("counter", LONG) for _ in range(per_thread)]

    results = run_together(THREADS, increments)

    counts = sorted(n for batch in results for n in batch)  # type: ignore[attr-defined]
    assert counts == list(range(1, THREADS * per_thread + 1))


def test_incr_window_is_not_extended_by_later_increments(store: EphemeralStore) -> None:
    assert store.incr("k", SHORT) == 1
    time.sleep(0.5)
    assert store.incr("k", SHORT) == 2
    remaining = store.ttl("k")
    assert remaining is not None and remaining <= SHORT - timedelta(seconds=0.4)

    time.sleep(0.7)  # past the first increment's window, within a window restarted at the second

    assert store.incr("k", SHORT) == 1


def test_take_counts_each_counter_while_all_are_within_their_limits(
    store: EphemeralStore,
) -> None:
    counts = [Count("a", 2, LONG), Count("b", 2, SHORT)]

    assert store.take(counts) is None
    assert store.take(counts) is None

    assert (store.count("a"), store.count("b")) == (2, 2)
    remaining = store.ttl("b")
    assert remaining is not None and remaining <= SHORT


def test_take_stops_at_the_first_counter_over_its_limit(store: EphemeralStore) -> None:
    store.incr("full", LONG)
    counts = [Count("first", 5, LONG), Count("full", 1, LONG), Count("after", 5, LONG)]

    assert store.take(counts) == Count("full", 1, LONG)

    # the counter over its limit counted this take, as incr would; the one after it did not
    assert [store.count(key) for key in ("first", "full", "after")] == [1, 2, 0]
    assert store.take([]) is None


def test_take_is_atomic_per_counter_under_concurrency(store: EphemeralStore) -> None:
    limit = 5
    counts = [Count("shared", limit, LONG)]

    results = run_together(THREADS, lambda: store.take(counts))

    assert (
        sorted(result is None for result in results) == [False] * (THREADS - limit) + [True] * limit
    )
    assert store.count("shared") == THREADS


# --- expiry ----------------------------------------------------------------------------------


def test_entries_expire_after_their_ttl(store: EphemeralStore) -> None:
    store.put("put", b"v", SHORT)
    store.put("consumed", b"v", SHORT)
    assert store.add("added", b"first", SHORT) is True
    assert store.incr("counter", SHORT) == 1
    store.put("long", b"v", LONG)

    time.sleep(SHORT.total_seconds() + 0.2)

    assert store.get("put") is None
    assert store.ttl("put") is None
    assert store.consume("consumed") is None
    assert store.add("added", b"second", LONG) is True
    assert store.get("added") == b"second"
    assert store.incr("counter", LONG) == 1
    assert store.get("long") == b"v"


# --- tracked reads ---------------------------------------------------------------------------


def twin_of(store: EphemeralStore) -> EphemeralStore:
    """Another instance on the same data, as another process of the provider has."""
    if isinstance(store, RedisStore):
        pool = store.client.connection_pool
        client = redis.Redis(
            connection_pool=redis.ConnectionPool(
                connection_class=pool.connection_class, **pool.connection_kwargs
            )
        )
        return RedisStore(client, prefix=store.prefix)
    assert isinstance(store, SqlStore)
    return SqlStore(store.engine)


def test_a_tracked_read_sees_each_change_made_elsewhere(store: EphemeralStore) -> None:
    other = twin_of(store)
    assert store.get_tracked("version") is None

    other.put("version", b"1", LONG)
    assert store.get_tracked("version") == b"1"
    assert store.get_tracked("version") == b"1"

    other.put("version", b"2", LONG)
    assert store.get_tracked("version") == b"2"
    other.delete("version")
    assert store.get_tracked("version") is None
    other.put("version", b"3", SHORT)
    assert store.get_tracked("version") == b"3"
    time.sleep(SHORT.total_seconds() + 0.2)
    assert store.get_tracked("version") is None


def counting_reads(store: RedisStore) -> list[str]:
    """The keys ``store`` reads from Redis from now on."""
    reads: list[str] = []
    read = store.get

    def counted(key: str) -> bytes | None:
        reads.append(key)
        return read(key)

    store.get = counted  # type: ignore[method-assign]
    return reads


def tracking_connections(observer: redis.Redis, name: str) -> dict[str, str]:
    """The listener's and the owner's ids, among the connections named ``name``."""
    found = {}
    for entry in observer.client_list():
        if entry.get("name") == name and "P" in entry["flags"]:
            found["listener"] = entry["id"]
        elif entry.get("name") == name and "t" in entry["flags"]:
            found["owner"] = entry["id"]
    return found


@pytest.fixture
def named_redis_store(redis_url: str) -> Iterator[tuple[RedisStore, str]]:
    name = f"idp-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(redis_url, client_name=name)
    store = RedisStore(client, prefix=f"test:{uuid.uuid4().hex}:")
    yield store, name
    client.delete(store.prefix + "version")
    client.close()


@pytest.mark.redis
def test_a_tracked_value_is_read_from_redis_once_until_it_changes(named_redis_store) -> None:
    store, _name = named_redis_store
    other = twin_of(store)
    other.put("version", b"1", LONG)
    reads = counting_reads(store)

    assert [store.get_tracked("version") for _ in range(5)] == [b"1"] * 5
    assert reads == ["version"]

    other.put("version", b"2", LONG)
    assert [store.get_tracked("version") for _ in range(5)] == [b"2"] * 5
    assert reads == ["version", "version"]
    assert store.get("version") == b"2"  # a plain read still asks Redis


@pytest.mark.redis
@pytest.mark.parametrize("closed", ["listener", "owner"])
def test_a_closed_tracking_connection_drops_the_values_and_tracking_starts_again(
    named_redis_store, redis_url: str, closed: str
) -> None:
    """Announcements stop with either connection: a change made after one closed is seen at
    the next read all the same, and the values are kept again once tracking is back."""
    store, name = named_redis_store
    other = twin_of(store)
    observer = redis.Redis.from_url(redis_url)
    other.put("version", b"1", LONG)
    assert store.get_tracked("version") == b"1"
    before = tracking_connections(observer, name)
    assert set(before) == {"listener", "owner"}

    observer.client_kill_filter(_id=before[closed])
    other.put("version", b"2", LONG)
    reads = counting_reads(store)

    assert [store.get_tracked("version") for _ in range(3)] == [b"2"] * 3
    assert reads == ["version"]  # tracked again at once, so read once
    after = tracking_connections(observer, name)
    assert set(after) == {"listener", "owner"} and after[closed] != before[closed]
    other.put("version", b"3", LONG)
    assert store.get_tracked("version") == b"3"
    observer.close()


@pytest.mark.redis
def test_tracking_refused_is_logged_once_and_every_read_goes_to_redis(
    named_redis_store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that refuses ``CLIENT TRACKING`` (an ACL, a proxy): one warning, then plain
    reads, which still see each change."""
    monkeypatch.setattr(tracking, "RETRY_AFTER", 0.0)
    store, _name = named_redis_store
    other = twin_of(store)

    def refuse(*_args: object) -> None:
        raise redis.ResponseError("NOPERM this user has no permissions to run 'client'")

    monkeypatch.setattr(tracking.Announcer, "_track", refuse)
    other.put("version", b"1", LONG)
    reads = counting_reads(store)

    assert [store.get_tracked("version") for _ in range(3)] == [b"1"] * 3
    other.put("version", b"2", LONG)
    assert store.get_tracked("version") == b"2"

    assert reads == ["version"] * 4
    warnings = [r for r in caplog.records if r.name == "idp.store.tracking"]
    assert len(warnings) == 1 and "ResponseError" in warnings[0].getMessage()


@pytest.mark.redis
def test_tracked_reads_ping_both_connections_and_take_the_answers(
    named_redis_store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a ping at every read, each read takes the previous ping's answer among the
    announcements; tracking stays up and the values stay kept."""
    monkeypatch.setattr(tracking, "PING_EVERY", 0.0)
    store, _name = named_redis_store
    other = twin_of(store)
    other.put("version", b"1", LONG)
    reads = counting_reads(store)

    for _ in range(5):
        assert store.get_tracked("version") == b"1"
        time.sleep(0.01)  # the listener's answer arrives
    other.put("version", b"2", LONG)

    assert store.get_tracked("version") == b"2"
    assert reads == ["version", "version"]


# --- indexes ---------------------------------------------------------------------------------


def test_index_lists_its_members_sorted(store: EphemeralStore) -> None:
    assert store.index_members("sessions:account:1") == []
    store.index_add("sessions:account:1", "b-session", LONG)
    store.index_add("sessions:account:1", "a-session", LONG)
    store.index_add("sessions:account:1", "b-session", LONG)  # again: still one member
    store.index_add("sessions:account:2", "other", LONG)

    assert store.index_members("sessions:account:1") == ["a-session", "b-session"]
    assert store.index_members("sessions:account:2") == ["other"]


def test_index_is_apart_from_plain_keys(store: EphemeralStore) -> None:
    store.put("sessions:account:1", b"plain", LONG)
    store.index_add("sessions:account:1", "member", LONG)
    store.index_add("sessions:account:1_x", "near", LONG)  # a name with the first as prefix
    store.index_add("sessions:account:%", "wild", LONG)  # LIKE wildcards are plain characters

    assert store.get("sessions:account:1") == b"plain"
    assert store.index_members("sessions:account:1") == ["member"]
    assert store.index_members("sessions:account:%") == ["wild"]
    store.delete("sessions:account:1")
    assert store.index_members("sessions:account:1") == ["member"]


def test_index_remove_drops_one_member(store: EphemeralStore) -> None:
    store.index_add("idx", "one", LONG)
    store.index_add("idx", "two", LONG)

    store.index_remove("idx", "one")
    store.index_remove("idx", "absent")  # removing what is not there is no error
    store.index_remove("no-such-index", "one")

    assert store.index_members("idx") == ["two"]


def test_index_members_expire_each_after_their_own_ttl(store: EphemeralStore) -> None:
    store.index_add("idx", "short", SHORT)
    store.index_add("idx", "long", LONG)
    store.index_add("idx", "renewed", SHORT)
    store.index_add("idx", "renewed", LONG)  # adding again replaces the lifetime

    time.sleep(SHORT.total_seconds() + 0.2)

    assert store.index_members("idx") == ["long", "renewed"]
    store.index_add("idx", "short", LONG)  # an expired member can be added again
    assert store.index_members("idx") == ["long", "renewed", "short"]


def test_concurrent_index_adds_all_stick(store: EphemeralStore) -> None:
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def add() -> None:
        with lock:
            number = next(counter)
        store.index_add("idx", f"member-{number}", LONG)

    run_together(THREADS, add)

    assert store.index_members("idx") == sorted(f"member-{n}" for n in range(THREADS))


# --- fail closed -----------------------------------------------------------------------------


CALLS: dict[str, Callable[[EphemeralStore], object]] = {
    "put": lambda s: s.put("k", b"v", LONG),
    "add": lambda s: s.add("k", b"v", LONG),
    "replace": lambda s: s.replace("k", b"v", LONG),
    "get": lambda s: s.get("k"),
    "get_tracked": lambda s: s.get_tracked("k"),
    "consume": lambda s: s.consume("k"),
    "incr": lambda s: s.incr("k", LONG),
    "take": lambda s: s.take([Count("k", 1, LONG)]),
    "ttl": lambda s: s.ttl("k"),
    "delete": lambda s: s.delete("k"),
    "index_add": lambda s: s.index_add("k", "m", LONG),
    "index_members": lambda s: s.index_members("k"),
    "index_remove": lambda s: s.index_remove("k", "m"),
}


@pytest.fixture(params=["sql:postgresql", "redis"])
def unreachable_store(request: pytest.FixtureRequest) -> Iterator[EphemeralStore]:
    """A store whose server does not answer (nothing listens on port 1)."""
    if request.param == "redis":
        client = redis.Redis.from_url(
            "redis://127.0.0.1:1/0", socket_connect_timeout=2, socket_timeout=2
        )
        yield RedisStore(client, prefix="test:")
        client.close()
        return
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    yield SqlStore(engine)
    engine.dispose()


@pytest.mark.parametrize("method", list(CALLS))
def test_unreachable_store_fails_closed(unreachable_store: EphemeralStore, method: str) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        CALLS[method](unreachable_store)

    assert isinstance(caught.value, IdpError)
    assert caught.value.status == 503


@pytest.mark.redis
def test_the_redis_store_talks_on_one_connection_per_thread_closed_with_it(redis_url: str) -> None:
    """Each thread has a connection of its own, made with the given client's settings, and it
    closes when the thread ends: threads that come and go leave no connection behind."""
    name = f"idp-test-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(redis_url, client_name=name)
    store = RedisStore(client, prefix=f"test:{uuid.uuid4().hex}:")
    observer = redis.Redis.from_url(redis_url)

    def connections() -> int:
        return sum(1 for entry in observer.client_list() if entry.get("name") == name)

    counted: list[int] = []
    all_in = threading.Barrier(3)
    counted_once = threading.Barrier(3)

    read: list[bytes | None] = []

    def work(index: int) -> None:
        store.put(f"k{index}", b"v", LONG)
        all_in.wait()
        if index == 0:
            counted.append(connections())
        counted_once.wait()
        read.append(store.get(f"k{index}"))  # still on its own connection

    threads = [threading.Thread(target=work, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counted == [3]
    assert read == [b"v", b"v", b"v"]
    deadline = time.monotonic() + 5
    while connections() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert connections() == 0
    observer.close()
    client.close()
