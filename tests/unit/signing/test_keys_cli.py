"""``idp keys``: generate, list, rotate, retire through click's runner inside an app context.

A minimal Flask app holds a FileKeyStore over this test's own directory: the shared ``app``
fixture uses the session-wide key directory, which these commands would rotate under other tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.signing.cli import keys_cli
from idp.signing.files import FileKeyStore
from idp.signing.interface import KeyRef


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def store(keys_path: Path) -> FileKeyStore:
    return FileKeyStore(keys_path)


@pytest.fixture
def runner(store: FileKeyStore) -> FlaskCliRunner:
    app = Flask(__name__)
    app.extensions["idp.keys"] = store
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    result: Result = runner.invoke(keys_cli, list(args))
    return result


def listed(key_store: FileKeyStore) -> list[KeyRef]:
    """``KeyStore.keys()``, named so ruff's SIM118 does not take it for ``dict.keys()``."""
    refs: list[KeyRef] = key_store.keys()
    return refs


def directory_contents(path: Path) -> dict[str, bytes]:
    return {item.name: item.read_bytes() for item in sorted(path.iterdir())}


def test_generate_creates_active_then_next_key(runner: FlaskCliRunner, store: FileKeyStore) -> None:
    first = invoke(runner, "generate")
    second = invoke(runner, "generate", "--alg", "ES256")

    assert (first.exit_code, second.exit_code) == (0, 0)
    states = {ref.kid: ref.state for ref in listed(store)}
    assert states == {first.stdout.strip(): "active", second.stdout.strip(): "next"}


def test_generate_rsa_with_lower_case_alg(runner: FlaskCliRunner, store: FileKeyStore) -> None:
    result = invoke(runner, "generate", "--alg", "rs256")

    assert result.exit_code == 0
    assert store.signing_key("RS256").kid == result.stdout.strip()


def test_list_prints_a_table_and_json(runner: FlaskCliRunner, store: FileKeyStore) -> None:
    store.generate("ES256")
    active = store.rotate("ES256")

    table = invoke(runner, "list")
    as_json = invoke(runner, "list", "--json")

    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["KID", "ALG", "STATE", "CREATED", "RETIRED"]
    assert len(lines) == 4
    assert any(line.split()[:3] == [active.kid, "ES256", "active"] for line in lines)
    rows = json.loads(as_json.stdout)
    assert sorted(row["state"] for row in rows) == ["active", "next", "retired"]
    assert set(rows[0]) == {"kid", "alg", "state", "created_at", "retired_at"}


def test_rotate_prints_active_and_next(runner: FlaskCliRunner, store: FileKeyStore) -> None:
    old = store.generate("ES256")

    result = invoke(runner, "rotate")

    assert result.exit_code == 0
    active = store.signing_key("ES256")
    upcoming = next(ref for ref in listed(store) if ref.state == "next")
    assert result.stdout.split() == ["active", active.kid, "next", upcoming.kid]
    assert active.kid != old.kid


def test_retire_takes_a_kid_that_starts_with_a_dash(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "retire", "-no-such-kid")
    assert "no signing key with kid '-no-such-kid'" in result.output


def test_retire_a_next_key(runner: FlaskCliRunner, store: FileKeyStore) -> None:
    store.generate("ES256")
    upcoming = store.generate("ES256", state="next")

    result = invoke(runner, "retire", upcoming.kid)

    assert (result.exit_code, result.stdout) == (0, f"retired {upcoming.kid}\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retire", "no-such-kid"], "Error: no signing key with kid 'no-such-kid'"),
        (
            ["retire", "{active}"],
            "Error: refusing to retire {active}: it is the only active ES256 key",
        ),
        (["generate", "--alg", "RS256"], "Error: a next RS256 key already exists"),
    ],
)
def test_refusals_exit_non_zero_and_change_nothing(
    runner: FlaskCliRunner, store: FileKeyStore, keys_path: Path, args: list[str], message: str
) -> None:
    active = store.generate("ES256")
    store.generate("RS256")
    store.generate("RS256", state="next")
    before = directory_contents(keys_path)
    args = [arg.format(active=active.kid) for arg in args]

    result = invoke(runner, *args)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message.format(active=active.kid))
    assert directory_contents(keys_path) == before


def test_unknown_alg_is_a_usage_error(runner: FlaskCliRunner, keys_path: Path) -> None:
    result = invoke(runner, "rotate", "--alg", "HS256")

    assert result.exit_code == 2
    assert "HS256" in result.stderr
    assert not keys_path.exists()
