"""Database layer: declarative base with a constraint naming convention, UTC-aware datetimes and
one SQLAlchemy session per request (committed by the request boundary, never by helpers)."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar, cast

from flask import Flask, Response
from sqlalchemy import (
    ClauseElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Executable,
    MetaData,
    Result,
    Table,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Session,
    attributes,
    configure_mappers,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from idp import context, jsoncodec
from idp.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

AFTER_COMMIT = "idp_after_commit"
# Session.info: the connection of the pool in autocommit that the session's plain statements
# run on while they stand alone (``statements_stand_alone``).
STANDALONE = "idp.standalone"
STANDALONE_ENGINE = "idp.engine.standalone"
# The pool's record of a driver connection (``info``, emptied when the connection is replaced):
# the cursor ``DirectStatement`` keeps for it.
KEPT_CURSOR = "idp.cursor"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database cannot be reached: down, refusing connections, or a connection that broke
    during the request."""

    code = "database_unavailable"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


AnyModel = TypeVar("AnyModel", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A model's table, for plain statements that skip the ORM's unit of work."""
    return Base.metadata.tables[model.__tablename__]


def run(
    session: Session,
    statement: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> Result[Any]:
    """A plain statement (tables and columns, no ORM entities) on the session's connection, in
    its transaction (sessions never autoflush, so its own ``execute`` would not flush either):
    the ORM's execute path costs 40-55 µs more per statement than the statement itself
    (docs/performance.md). While statements stand alone, on their own connection."""
    return connection_of(session).execute(statement, params)


def first(session: Session, statement: Executable, params: Mapping[str, Any]) -> Any:
    """The first row of a plain statement (``run``), or None. Rows are indexed by position or
    named by column (``row.client_id``, ``row._mapping``). Sent to the driver directly where
    it can be (``DirectStatement``)."""
    connection = connection_of(session)
    direct = DirectStatement.of(statement, connection.dialect, params)
    if direct is not None:
        return direct.first(connection, params)
    return connection.execute(statement, params).first()


def write(session: Session, statement: Executable, params: Mapping[str, Any]) -> int:
    """A plain statement that returns no rows (``run``): the rows it wrote or matched. Sent to
    the driver directly where it can be (``DirectStatement``)."""
    connection = connection_of(session)
    direct = DirectStatement.of(statement, connection.dialect, params)
    if direct is not None:
        return direct.write(connection, params)
    return rowcount(connection.execute(statement, params))


class DirectRow(tuple[Any, ...]):
    """A row of a ``DirectStatement``: a tuple whose columns are also attributes by name, as
    SQLAlchemy's rows are (``_names`` is set on a subclass per statement)."""

    __slots__ = ()
    _names: ClassVar[dict[str, int]] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._names[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {name: self[at] for name, at in self._names.items()}


class DirectStatement:
    """A plain statement compiled once for the database's driver (psycopg, sqlite3) and sent
    to a cursor of the connection straight away, for the statements every token and resource
    request runs: SQLAlchemy's execution around a statement (its execution context, result and
    row objects) cost 7-15 % of such a request's instructions (docs/performance.md,
    "Statements sent directly"). What SQLAlchemy would do for such a statement is kept: the
    column types' conversions both ways, its cursor events (with no execution context, as its
    events allow) and its errors (``DBAPIError``, the connection invalidated when it was
    lost). The connection's transaction, if it is in one, is the driver's as before. A
    statement that needs more of SQLAlchemy (Python-side column defaults, parameters it
    renders into the SQL) is refused by ``of`` and runs through it."""

    DRIVERS = frozenset({"psycopg", "pysqlite"})

    _compiled: ClassVar[dict[tuple[int, int, tuple[str, ...]], DirectStatement | None]] = {}
    MAX_STATEMENTS = 256  # the statements are module constants: a few dozen per engine

    def __init__(self, statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> None:
        # held: their ids stay their own while they are part of a cache key
        self.statement, self.dialect = statement, dialect
        self.keeps_cursor = dialect.driver == "psycopg"
        compiled = cast(
            SQLCompiler,
            cast(ClauseElement, statement).compile(dialect=dialect, column_keys=list(keys)),
        )
        self.compiled = compiled
        self.sql = compiled.string
        # sqlite3 takes its parameters by position (``?``), psycopg by name
        self.positions = compiled.positiontup if dialect.positional else None
        self.binds = {
            name: processor
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        columns = list(getattr(statement, "exported_columns", ()))
        self.results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self.converts = any(self.results)
        names = {column.key: at for at, column in reversed(list(enumerate(columns)))}
        self.row = type("Row", (DirectRow,), {"_names": names, "__slots__": ()})

    @classmethod
    def of(
        cls, statement: Executable, dialect: Dialect, params: Mapping[str, Any]
    ) -> DirectStatement | None:
        """``statement`` compiled for the parameters ``params`` names, or None where it must
        run through SQLAlchemy (another driver, or a statement that needs its execution)."""
        key = (id(statement), id(dialect), tuple(params))
        try:
            return cls._compiled[key]
        except KeyError:
            pass
        direct: DirectStatement | None = None
        if dialect.driver in cls.DRIVERS:
            direct = cls(statement, dialect, key[2])
            if not direct._plain():
                direct = None
        if len(cls._compiled) >= cls.MAX_STATEMENTS:
            cls._compiled.clear()
        cls._compiled[key] = direct
        return direct

    def _plain(self) -> bool:
        compiled = self.compiled
        return not (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.escaped_bind_names
            or "[POSTCOMPILE_" in self.sql  # expanding or literal parameters
        )

    def first(self, connection: Connection, params: Mapping[str, Any]) -> DirectRow | None:
        cursor = self._execute(connection, params)
        try:
            values = cursor.fetchone()
        finally:
            self._done(cursor)
        if values is None:
            return None
        if self.converts:
            values = [
                convert(value) if convert is not None else value
                for convert, value in zip(self.results, values, strict=True)
            ]
        return self.row(values)

    def write(self, connection: Connection, params: Mapping[str, Any]) -> int:
        cursor = self._execute(connection, params)
        try:
            return int(cursor.rowcount)
        finally:
            self._done(cursor)

    def _execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        values: dict[str, Any] = dict(self.compiled.construct_params(params))
        for name, convert in self.binds.items():
            values[name] = convert(values[name])
        sent: Any = values if self.positions is None else [values[n] for n in self.positions]
        cursor = self._cursor(connection)
        # SQLAlchemy's own test before each event: a connection's dispatch is made anew for each
        # connection, and its first look at each event costs more than the test.
        dispatch: Any = connection.dispatch if _has_events(connection) else None
        if dispatch is not None and dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(connection, cursor, self.sql, sent, None, False)
        try:
            cursor.execute(self.sql, sent)
        except connection.dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise self._translated(connection, error, sent) from error
        if dispatch is not None and dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(connection, cursor, self.sql, sent, None, False)
        return cursor

    def _cursor(self, connection: Connection) -> Any:
        """A cursor of the connection's driver. psycopg's is kept with its connection for the
        next statement: a cursor makes a loader for each column type of a result on first use
        and keeps it (a fresh cursor cost 16 µs more for a row of twenty columns), and holds the
        whole result on the client, so it can run the next statement at once. sqlite3 steps a
        statement as its rows are read: a fresh cursor, closed after (``_done``)."""
        pooled: Any = connection.connection
        if not self.keeps_cursor:
            return pooled.dbapi_connection.cursor()
        cursor = pooled.info.get(KEPT_CURSOR)  # dropped with the driver's connection
        if cursor is None or cursor.closed:
            cursor = pooled.info[KEPT_CURSOR] = pooled.dbapi_connection.cursor()
        return cursor

    def _done(self, cursor: Any) -> None:
        if not self.keeps_cursor:
            cursor.close()

    def _translated(self, connection: Connection, error: Any, values: Any) -> Exception:
        """The error as SQLAlchemy would raise it; a lost connection is invalidated, so that
        its pool opens a new one."""
        dialect = connection.dialect
        lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
        if lost:
            connection.invalidate(error)
        return DBAPIError.instance(
            self.sql,
            values,
            error,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        )


def _has_events(connection: Connection) -> bool:
    """Whether any listener of the connection's or its engine's events is set, as SQLAlchemy
    tests it before each of its own event points."""
    return bool(connection._has_events or connection.engine._has_events)


def connection_of(session: Session) -> Connection:
    """The connection ``session``'s plain statements run on."""
    standalone: Connection | None = session.info.get(STANDALONE)
    return standalone if standalone is not None else session.connection()


def unattached(model: type[AnyModel], columns: Mapping[str, Any]) -> AnyModel:
    """A new object of ``model`` holding ``columns``, filled in at once as a query's load
    fills one, without the change event the constructor fires for each attribute: for a row
    read by a plain statement and only read afterwards, never added to a session (a code's
    row: ~19 µs by the constructor, ~1 this way; docs/performance.md)."""
    manager = attributes.manager_of_class(model)
    if not manager.mapper.configured:  # as the constructor would, before the first object
        configure_mappers()
    item: AnyModel = manager.new_instance()
    attributes.instance_dict(item).update(columns)
    return item


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE/DELETE (typed access to ``CursorResult.rowcount``)."""
    return int(result.rowcount)


def utcnow() -> datetime:
    return datetime.now(UTC)


def datetime_from_timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]


# JSON columns written and read by the provider's codec (SQLite: as text; PostgreSQL: psycopg).
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": jsoncodec.dumps,
    "json_deserializer": jsoncodec.loads,
}


def make_engine(url: str, *, autocommit: bool = False) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL with synchronous=NORMAL and a busy
    timeout so concurrent requests wait instead of failing. ``autocommit`` (PostgreSQL only):
    its connections are in autocommit from the start, for statements that stand alone."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON_CODEC
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    isolation = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    engine = create_engine(url, pool_size=10, max_overflow=20, **isolation, **_JSON_CODEC)
    tested = CheckedBeforeUse(engine.dialect)
    event.listen(engine, "checkin", tested.note_checkin)
    event.listen(engine, "checkout", tested.check)
    return engine


class CheckedBeforeUse:
    """What ``pool_pre_ping`` guarantees (a pooled connection the server has closed is replaced
    before a request uses it: a failover, a restart, ended backends), without its round trip
    for a connection used moments ago. PostgreSQL hangs up on a backend it ends, so such a
    connection's socket is readable at once (an idle healthy one has nothing to read) and is
    checked without asking the server; a connection idle for longer, which a firewall or proxy
    may have dropped without a word, is pinged as before (docs/faults.md)."""

    PING_AFTER_IDLE = 10.0  # seconds

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def note_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None:  # opened for this checkout
            return
        if time.monotonic() - idle_since > self.PING_AFTER_IDLE:
            alive = self._answers_ping(dbapi_connection)
        else:
            alive = not _has_hung_up(dbapi_connection)
        if not alive:  # the pool replaces it and checks out again
            raise DisconnectionError("the database closed this pooled connection")

    def _answers_ping(self, dbapi_connection: Any) -> bool:
        try:
            return bool(self.dialect.do_ping(dbapi_connection))
        except self.dialect.loaded_dbapi.Error as error:
            if self.dialect.is_disconnect(error, dbapi_connection, None):
                return False
            raise


def _has_hung_up(dbapi_connection: Any) -> bool:
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    return bool(readable)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power loss can drop the
    # last commits but never corrupts the database; a crash of the process loses nothing.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def init_app(app: Flask, database_url: str) -> None:
    engine = make_engine(database_url)
    # No autoflush: on SQLite a flushed write holds the database's single write lock until the
    # request commits, and the SQL ephemeral store (its own connection) would wait on it.
    # Writes therefore reach the database at commit, or at an explicit flush where an id is needed.
    sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    event.listen(sessions, "after_commit", _run_after_commit)
    event.listen(sessions, "after_soft_rollback", _forget_after_commit)
    event.listen(sessions, "after_commit", end_standalone)
    event.listen(sessions, "after_soft_rollback", end_standalone)
    app.extensions["idp.db"] = sessions
    app.extensions["idp.engine"] = engine
    if engine.dialect.name == "postgresql":
        app.extensions[STANDALONE_ENGINE] = make_engine(database_url, autocommit=True)
    # A session lives for one request (or one CLI command): opened on first use, committed
    # after the view (``commit_session``, by idp.pipeline), closed at teardown. The pipeline
    # closes it at the start too where an outer app context spans several requests (the test
    # client), so no request sees stale objects.
    app.teardown_request(close_session)
    app.teardown_appcontext(close_session)


def engine() -> Engine:
    value: Engine = context.app().extensions["idp.engine"]
    return value


def engines(app: Flask) -> list[Engine]:
    """Every engine of ``app``: the sessions' and, on PostgreSQL, the one statements stand
    alone on (``statements_stand_alone``)."""
    found = [app.extensions["idp.engine"], app.extensions.get(STANDALONE_ENGINE)]
    return [engine for engine in found if engine is not None]


def dispose(app: Flask) -> None:
    """Close every pooled connection of ``app``'s engines."""
    for engine in engines(app):
        engine.dispose()


def session() -> Session:
    """The session of the current request (or CLI command)."""
    request_globals = context.g()
    db_session: Session | None = request_globals.get("db_session")
    if db_session is None:
        db_session = request_globals.db_session = context.app().extensions["idp.db"]()
    return db_session


def statements_stand_alone() -> None:
    """Until the session's next commit or rollback, each plain statement (``run``) commits on
    its own: for a request that only reads, or whose writes are each one statement meant to
    stand by itself (a refresh token's claim, a client's own token). On PostgreSQL they then
    run outside a transaction, one round trip each instead of three (``BEGIN``, the statement,
    ``COMMIT``), on a connection of a pool whose connections are in autocommit from the start:
    such a request opens no transaction of the session's, whose lifecycle cost more CPU than
    its statement (docs/performance.md, "Statements standing alone"). ORM work of the request
    (rare on these paths: a replay's revocation) keeps the session's own transaction. On
    SQLite, where a transaction costs no round trip, nothing changes. Called before the
    request's first statement (a request already in a transaction keeps it). The commit ends
    it: the connection goes back to its pool, and the next statement begins a transaction."""
    standalone: Engine | None = context.app().extensions.get(STANDALONE_ENGINE)
    db_session = session()
    if standalone is not None and not db_session.in_transaction() and not stands_alone(db_session):
        db_session.info[STANDALONE] = standalone.connect()


def stands_alone(session: Session) -> bool:
    """Each plain statement ``session`` sends now commits on its own
    (``statements_stand_alone``): a write that must hold with another then has to be one
    statement with it."""
    return STANDALONE in session.info


def end_standalone(session: Session, *_args: Any) -> None:
    """Statements stand alone no longer: their connection goes back to its pool."""
    standalone: Connection | None = session.info.pop(STANDALONE, None)
    if standalone is not None:
        standalone.close()


def commit_now(session: Session) -> None:
    """Commit what ``session`` has written so far. Statements standing alone have committed
    already: they go on standing alone, unless ORM work opened a transaction of the session's
    (committed, which ends their standing alone). A commit with nothing to commit costs the
    ORM ~40 µs."""
    if session.in_transaction() or not stands_alone(session):
        session.commit()


def keep(row: object) -> None:
    """Hold ``row`` for the rest of the request: the session's identity map holds rows weakly,
    so a row nobody references is dropped and a later ``Session.get`` of it is a SELECT again."""
    if row is not None:
        session().info.setdefault("idp.kept", []).append(row)


def commit_session(response: Response) -> Response:
    """A session that began no transaction has nothing to commit (an empty commit costs the
    ORM ~40 µs); each statement that stood alone has committed already."""
    db_session: Session | None = context.g().get("db_session")
    if db_session is not None:
        if db_session.in_transaction():
            db_session.commit()
        end_standalone(db_session)
    return response


def ensure_reachable() -> None:
    """Open the request's connection now (``CheckedBeforeUse`` tests it): a request that makes
    something elsewhere before it writes here (a code in the store, an SMS in the queue) fails
    before making it, not at its commit."""
    try:
        connection_of(session())
    except OperationalError as error:
        raise DatabaseUnavailableError(detail=type(error.orig).__name__) from error


def discard() -> None:
    """Drop the request's session and whatever it had not committed, without writing (the
    database is gone): the response's commit then has nothing to do."""
    db_session = context.g().pop("db_session", None)
    if db_session is not None:
        standalone: Connection | None = db_session.info.pop(STANDALONE, None)
        if standalone is not None:
            standalone.invalidate()
        db_session.invalidate()


def close_session(_error: BaseException | None = None) -> None:
    db_session = context.g().pop("db_session", None)
    if db_session is None:
        return
    end_standalone(db_session)
    if holds_nothing(db_session):
        return  # closing it would only make its events' dispatch (2.5 % of a client's grant)
    db_session.rollback()
    db_session.close()


def holds_nothing(session: Session) -> bool:
    """No transaction of ``session``'s, and no object in it: nothing to roll back or let go
    (a request whose statements stood alone, or that made none)."""
    return not (session.in_transaction() or session.identity_map or session.new)


def after_commit(action: Callable[[], None], db_session: Session | None = None) -> None:
    """Run ``action`` once the current transaction (of ``db_session``, by default the
    request's) has committed, and never if it rolls back: a message about a decision (an SMS, a
    logout notice) must not leave before the decision is saved. A failing action is logged;
    the commit stands."""
    db_session = db_session or session()
    if not db_session.in_transaction():
        db_session.begin()  # so that a rollback, even before any statement, forgets it
    db_session.info.setdefault(AFTER_COMMIT, []).append(action)


def _run_after_commit(db_session: Session) -> None:
    for action in db_session.info.pop(AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # committed already: it can only be told
            log.exception("action after commit failed")


def _forget_after_commit(db_session: Session, _transaction: Any = None) -> None:
    db_session.info.pop(AFTER_COMMIT, None)
