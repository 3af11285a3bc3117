"""Ephemeral store on the provider's own database (the embedded default).

Each operation runs in its own short transaction on a separate connection, so counters and
consumed values stick even when the surrounding request is rolled back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    String,
    Table,
    bindparam,
    case,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import BindParameter

from idp.config import Settings
from idp.db import Base, UTCDateTime, make_engine, rowcount, utcnow
from idp.store.interface import Count, StoreUnavailableError

# Expired rows are invisible; about one put in SWEEP_EVERY also deletes them, so the table
# stays small without a scheduler.
SWEEP_EVERY = 200


class StoreEntry(Base):
    __tablename__ = "store_entry"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    count: Mapped[int] = mapped_column(default=0)  # for incr(); atomic in the database
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


TABLE = cast(Table, StoreEntry.__table__)  # declared as FromClause; it is a Table


def _upserts(insert_for: Callable[[Table], postgresql.Insert | sqlite.Insert]) -> dict[str, Any]:
    """The two upserts of one dialect: ``put`` (value and lifetime anew) and ``incr`` (a live
    counter goes up by one and keeps its lifetime; a missing or expired one starts at 1)."""
    put = insert_for(TABLE).values(key=_KEY, value=_VALUE, count=0, expires_at=_UNTIL)
    put = put.on_conflict_do_update(
        index_elements=[TABLE.c.key],
        set_={"value": put.excluded.value, "count": 0, "expires_at": put.excluded.expires_at},
    )
    counter = insert_for(TABLE).values(key=_KEY, value=b"", count=1, expires_at=_UNTIL)
    live = TABLE.c.expires_at > _NOW
    incr = counter.on_conflict_do_update(
        index_elements=[TABLE.c.key],
        set_={
            "count": case((live, TABLE.c.count + 1), else_=1),
            "value": case((live, TABLE.c.value), else_=counter.excluded.value),
            "expires_at": case((live, TABLE.c.expires_at), else_=counter.excluded.expires_at),
        },
    ).returning(TABLE.c.count)
    return {"put": put, "incr": incr}


# Every statement is built once with bound parameters: building one per call, and working out
# its cache key, cost more CPU than SQLite takes to run it. (A bound parameter may not share a
# column's name in VALUES or SET, hence the short names.)
_KEY: BindParameter[str] = bindparam("k")
_VALUE: BindParameter[bytes] = bindparam("v")
_NOW, _UNTIL = bindparam("now", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime())
_IS_KEY, _IS_LIVE = TABLE.c.key == _KEY, TABLE.c.expires_at > _NOW
_GET = select(TABLE.c.value).where(_IS_KEY, _IS_LIVE)
_COUNT_OF = select(TABLE.c.count).where(_IS_KEY, _IS_LIVE)
_EXPIRY = select(TABLE.c.expires_at).where(_IS_KEY, _IS_LIVE)
_DELETE = delete(TABLE).where(_IS_KEY)
_DELETE_EXPIRED = delete(TABLE).where(_IS_KEY, TABLE.c.expires_at <= _NOW)
_INSERT = insert(TABLE).values(key=_KEY, value=_VALUE, count=0, expires_at=_UNTIL)
_CONSUME = delete(TABLE).where(_IS_KEY, _IS_LIVE).returning(TABLE.c.value)
_REPLACE = update(TABLE).where(_IS_KEY, _IS_LIVE).values(value=_VALUE, count=0, expires_at=_UNTIL)
_UPSERTS = {"postgresql": _upserts(postgresql.insert), "sqlite": _upserts(sqlite.insert)}


class SqlStore:
    """``EphemeralStore`` on a SQL table; expired rows are ignored and swept opportunistically."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlStore:
        return cls(make_engine(settings.database_url))

    def put(self, key: str, value: bytes, ttl: timedelta) -> None:
        # One upsert: delete-then-insert let concurrent puts of a key fail on PostgreSQL.
        with self._transaction() as conn:
            conn.execute(_upsert(conn, "put"), {"k": key, "v": value, "until": utcnow() + ttl})
        if secrets.randbelow(SWEEP_EVERY) == 0:
            self.sweep()

    def add(self, key: str, value: bytes, ttl: timedelta) -> bool:
        now = utcnow()
        try:
            with self._transaction() as conn:
                conn.execute(_DELETE_EXPIRED, {"k": key, "now": now})
                conn.execute(_INSERT, {"k": key, "v": value, "until": now + ttl})
        except IntegrityError:
            return False
        return True

    def replace(self, key: str, value: bytes, ttl: timedelta) -> bool:
        # One conditional UPDATE: a concurrent delete either comes first (nothing matches) or
        # after (it deletes what this wrote).
        now = utcnow()
        with self._transaction() as conn:
            replaced = conn.execute(
                _REPLACE, {"k": key, "now": now, "v": value, "until": now + ttl}
            )
            return rowcount(replaced) == 1

    def get(self, key: str) -> bytes | None:
        with self._transaction() as conn:
            row = conn.execute(_GET, {"k": key, "now": utcnow()}).first()
        return None if row is None else bytes(row[0])

    def get_tracked(self, key: str) -> bytes | None:
        return self.get(key)  # nothing tells this process of another's write

    def consume(self, key: str) -> bytes | None:
        # DELETE ... RETURNING makes "read and remove" one statement: one caller wins.
        with self._transaction() as conn:
            row = conn.execute(_CONSUME, {"k": key, "now": utcnow()}).first()
        return None if row is None else bytes(row[0])

    def incr(self, key: str, ttl: timedelta) -> int:
        with self._transaction() as conn:
            return _counted(conn, key, ttl, utcnow())

    def take(self, counts: Sequence[Count]) -> Count | None:
        # The upserts of ``incr``, in one transaction.
        now = utcnow()
        with self._transaction() as conn:
            for count in counts:
                if _counted(conn, count.key, count.window, now) > count.limit:
                    return count
        return None

    def count(self, key: str) -> int:
        with self._transaction() as conn:
            row = conn.execute(_COUNT_OF, {"k": key, "now": utcnow()}).first()
        return 0 if row is None or row[0] is None else int(row[0])

    def ttl(self, key: str) -> timedelta | None:
        with self._transaction() as conn:
            row = conn.execute(_EXPIRY, {"k": key, "now": utcnow()}).first()
        return None if row is None else row[0] - utcnow()

    def delete(self, key: str) -> None:
        with self._transaction() as conn:
            conn.execute(_DELETE, {"k": key})

    def index_add(self, key: str, member: str, ttl: timedelta) -> None:
        # A member is a row of its own, so it has its own lifetime and a plain upsert adds it.
        self.put(_member_key(key, member), b"", ttl)

    def index_members(self, key: str) -> list[str]:
        prefix = _member_key(key, "")
        with self._transaction() as conn:
            rows = conn.execute(
                select(TABLE.c.key).where(
                    TABLE.c.key.startswith(prefix, autoescape=True),
                    TABLE.c.expires_at > utcnow(),
                )
            )
            return sorted(str(row[0])[len(prefix) :] for row in rows)

    def index_remove(self, key: str, member: str) -> None:
        self.delete(_member_key(key, member))

    def sweep(self) -> int:
        """Delete expired rows; returns how many."""
        with self._transaction() as conn:
            return rowcount(conn.execute(delete(TABLE).where(TABLE.c.expires_at <= utcnow())))

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """``engine.begin()`` that turns database failures into ``StoreUnavailableError``."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (OperationalError, InterfaceError) as error:
            raise StoreUnavailableError(detail=str(error)) from error


def _counted(conn: Connection, key: str, window: timedelta, now: datetime) -> int:
    """Add one to the counter ``key`` in one upsert, atomic in the database (``_upserts``)."""
    counted = conn.execute(_upsert(conn, "incr"), {"k": key, "now": now, "until": now + window})
    return int(counted.scalar_one())


def _member_key(key: str, member: str) -> str:
    """The row of one index member: the index name, then the member, in a namespace no plain
    key uses."""
    return f"index/{key}#{member}"


def _upsert(conn: Connection, name: str) -> Any:
    """The dialect's upsert ``name``: ``ON CONFLICT`` exists on PostgreSQL and SQLite only."""
    return _UPSERTS["postgresql" if conn.dialect.name == "postgresql" else "sqlite"][name]
