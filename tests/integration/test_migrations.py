"""Alembic migrations on fresh SQLite and PostgreSQL databases: they build exactly the schema the
models declare (``alembic check``), and downgrade/upgrade round-trips, with data present."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, insert, inspect, select, text

import idp.models  # noqa: F401  (registers every table on Base.metadata)
from idp.db import Base, make_engine, utcnow
from idp.migrate import alembic_config, downgrade, upgrade
from tests.conftest import POSTGRES_URL, missing

TABLES = Base.metadata.tables


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    try:
        import psycopg

        admin = psycopg.connect(
            POSTGRES_URL.replace("+psycopg", ""), autocommit=True, connect_timeout=3
        )
    except Exception as error:
        missing(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    name = f"idp_migrations_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def engine(empty_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine) -> list[object]:
    """What ``alembic revision --autogenerate`` would emit: empty when models and schema agree."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def insert_sample_rows(engine: Engine) -> None:
    """One row in each core table, linked by foreign keys, so downgrade must handle data."""
    now = utcnow()
    with engine.begin() as conn:
        org_id = conn.execute(
            insert(TABLES["organisation"])
            .values(uscc="91310000MA1FL8XQ30", name="上海某审计事务所")
            .returning(TABLES["organisation"].c.id)
        ).scalar_one()
        account_id = conn.execute(
            insert(TABLES["account"])
            .values(
                subject=uuid.uuid4().hex,
                phone="13800000000",
                name="张三",
                password_hash="x",
                must_change_password=True,
            )
            .returning(TABLES["account"].c.id)
        ).scalar_one()
        conn.execute(
            insert(TABLES["membership"]).values(
                account_id=account_id, org_id=org_id, status="active", created_by="test"
            )
        )
        conn.execute(
            insert(TABLES["store_entry"]).values(key="k", value=b"v", count=0, expires_at=now)
        )


def count_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(TABLES[table])).scalar_one()


def test_migrations_have_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))

    assert len(script.get_heads()) == 1


def test_upgrade_head_builds_the_schema_of_the_models(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url)

    assert table_names(engine) == set(TABLES) | {"alembic_version"}
    assert schema_diff(engine) == []


def test_downgrade_base_and_upgrade_again_with_data(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url)
    insert_sample_rows(engine)
    assert count_rows(engine, "organisation") == 1

    downgrade(empty_url, "base")

    assert table_names(engine) <= {"alembic_version"}
    if engine.dialect.name == "postgresql":
        assert inspect(engine).get_enums() == []  # type: ignore[attr-defined]

    upgrade(empty_url)

    assert schema_diff(engine) == []
    assert count_rows(engine, "organisation") == 0
    insert_sample_rows(engine)
    assert count_rows(engine, "membership") == 1


def test_0002_gives_existing_organisations_an_admin_subject(empty_url: str, engine: Engine) -> None:
    upgrade(empty_url, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisation (uscc, name, created_at) VALUES ('91310000MA1K000019', 'A', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO organisation (uscc, name, created_at) VALUES ('91310115MA1H7GXX3K', 'B', CURRENT_TIMESTAMP)"
            )
        )
    upgrade(empty_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT admin_subject, contact_person FROM organisation")).all()
    assert len({row[0] for row in rows}) == 2
    assert all(row[0] and row[1] == "" for row in rows)


def test_0004_gives_existing_tokens_their_family_and_codes_what_they_issued(
    empty_url: str, engine: Engine
) -> None:
    upgrade(empty_url, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO account (subject, phone, name, password_hash, must_change_password,"
                " created_at) VALUES ('s1', '13800000000', 'A', 'x', false, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO authorization_code (code_hash, client_id, account_id, identity,"
                " redirect_uri, scope, auth_time, amr, sid, issued_at, expires_at, consumed_at)"
                " VALUES ('c1', 'rp', 1, '{}', 'https://rp/cb', 'openid', CURRENT_TIMESTAMP,"
                " '[]', 's', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        rows = (("a1", "fam-a", 1), ("a2", "fam-a", 1), ("a3", "fam-b", None))
        for digest, family, code_id in rows:
            conn.execute(
                text(
                    "INSERT INTO token (client_id, account_id, identity, access_token_hash,"
                    " scope, family_id, code_id, amr, issued_at, access_expires_at)"
                    " VALUES ('rp', 1, '{}', :digest, 'openid', :family, :code_id, '[]',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"digest": digest, "family": family, "code_id": code_id},
            )

    upgrade(empty_url)

    with engine.connect() as conn:
        families = conn.execute(
            text("SELECT family_id, client_id, revoked_at FROM token_family ORDER BY family_id")
        ).all()
        issued = conn.execute(text("SELECT family_id, revoked_at FROM authorization_code")).all()
    assert [tuple(row) for row in families] == [("fam-a", "rp", None), ("fam-b", "rp", None)]
    assert [tuple(row) for row in issued] == [("fam-a", None)]


def test_sqlite_connections_use_wal_with_normal_sync(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'idp.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()
