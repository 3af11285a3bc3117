"""Ephemeral store on the provider's own database (the embedded default).

Each operation runs in its own short transaction on a separate connection, so counters and
consumed values stick even when the surrounding request is rolled back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    String,
    Table,
    case,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from idp.config import Settings
from idp.db import Base, UTCDateTime, make_engine, rowcount, utcnow
from idp.store.interface import StoreUnavailableError

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
            upsert = _insert(conn).values(key=key, value=value, count=0, expires_at=utcnow() + ttl)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[TABLE.c.key],
                    set_={
                        "value": upsert.excluded.value,
                        "count": 0,
                        "expires_at": upsert.excluded.expires_at,
                    },
                )
            )
        if secrets.randbelow(SWEEP_EVERY) == 0:
            self.sweep()

    def add(self, key: str, value: bytes, ttl: timedelta) -> bool:
        return self._add(key, value, ttl, count=0)

    def _add(self, key: str, value: bytes, ttl: timedelta, *, count: int) -> bool:
        now = utcnow()
        try:
            with self._transaction() as conn:
                conn.execute(delete(TABLE).where(TABLE.c.key == key, TABLE.c.expires_at <= now))
                conn.execute(
                    insert(TABLE).values(key=key, value=value, count=count, expires_at=now + ttl)
                )
        except IntegrityError:
            return False
        return True

    def replace(self, key: str, value: bytes, ttl: timedelta) -> bool:
        # One conditional UPDATE: a concurrent delete either comes first (nothing matches) or
        # after (it deletes what this wrote).
        now = utcnow()
        with self._transaction() as conn:
            replaced = conn.execute(
                update(TABLE)
                .where(TABLE.c.key == key, TABLE.c.expires_at > now)
                .values(value=value, count=0, expires_at=now + ttl)
            )
            return rowcount(replaced) == 1

    def get(self, key: str) -> bytes | None:
        with self._transaction() as conn:
            row = conn.execute(
                select(TABLE.c.value).where(TABLE.c.key == key, TABLE.c.expires_at > utcnow())
            ).first()
        return None if row is None else bytes(row[0])

    def consume(self, key: str) -> bytes | None:
        # DELETE ... RETURNING makes "read and remove" one statement: one caller wins.
        with self._transaction() as conn:
            row = conn.execute(
                delete(TABLE)
                .where(TABLE.c.key == key, TABLE.c.expires_at > utcnow())
                .returning(TABLE.c.value)
            ).first()
        return None if row is None else bytes(row[0])

    def incr(self, key: str, ttl: timedelta) -> int:
        # One upsert, atomic in the database: a live counter goes up by one and keeps its
        # lifetime; a missing or expired one starts again at 1 with a new lifetime.
        now = utcnow()
        live = TABLE.c.expires_at > now
        with self._transaction() as conn:
            upsert = _insert(conn).values(key=key, value=b"", count=1, expires_at=now + ttl)
            counted = conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[TABLE.c.key],
                    set_={
                        "count": case((live, TABLE.c.count + 1), else_=1),
                        "value": case((live, TABLE.c.value), else_=upsert.excluded.value),
                        "expires_at": case(
                            (live, TABLE.c.expires_at), else_=upsert.excluded.expires_at
                        ),
                    },
                ).returning(TABLE.c.count)
            ).scalar_one()
        return int(counted)

    def count(self, key: str) -> int:
        with self._transaction() as conn:
            row = conn.execute(
                select(TABLE.c.count).where(TABLE.c.key == key, TABLE.c.expires_at > utcnow())
            ).first()
        return 0 if row is None or row[0] is None else int(row[0])

    def ttl(self, key: str) -> timedelta | None:
        with self._transaction() as conn:
            row = conn.execute(
                select(TABLE.c.expires_at).where(TABLE.c.key == key, TABLE.c.expires_at > utcnow())
            ).first()
        return None if row is None else row[0] - utcnow()

    def delete(self, key: str) -> None:
        with self._transaction() as conn:
            conn.execute(delete(TABLE).where(TABLE.c.key == key))

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


def _member_key(key: str, member: str) -> str:
    """The row of one index member: the index name, then the member, in a namespace no plain
    key uses."""
    return f"index/{key}#{member}"


def _insert(conn: Connection) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``ON CONFLICT`` (PostgreSQL and SQLite only)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(TABLE)
    return sqlite.insert(TABLE)
