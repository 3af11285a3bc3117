"""``idp keys``: generate, list, rotate, retire through click's runner inside an app context,
on both stores: JWK files and a PKCS#11 token (SoftHSM2).

A minimal Flask app holds a store of this test's own: the shared ``app`` fixture uses the
session-wide key directory, which these commands would rotate under other tests. The run of the
real ``idp`` command against a token, from another process, is in tests/integration/test_cli.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from idp.signing.cli import keys_cli
from idp.signing.files import FileKeyStore
from idp.signing.interface import KeyRef, KeyStore
from idp.signing.lifecycle import DEFAULT_ACTIVATION_DELAY
from idp.signing.pkcs11 import Pkcs11KeyStore, Token


class Clock:
    """A settable UTC time, so a next key can age past the JWKS cache lifetime."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture(params=["file", "pkcs11"])
def store(request: pytest.FixtureRequest, keys_path: Path, clock: Clock) -> Iterator[KeyStore]:
    if request.param == "file":
        yield FileKeyStore(keys_path, clock=clock)
        return
    token = request.getfixturevalue("hsm_token")
    store = Pkcs11KeyStore(Token.open(token.address()), clock=clock)
    yield store
    store.close()


@pytest.fixture
def runner(store: KeyStore) -> FlaskCliRunner:
    app = Flask(__name__)
    app.extensions["idp.keys"] = store
    return app.test_cli_runner()


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    result: Result = runner.invoke(keys_cli, list(args))
    return result


def listed(key_store: KeyStore) -> list[KeyRef]:
    """``KeyStore.keys()``, named so ruff's SIM118 does not take it for ``dict.keys()``."""
    refs: list[KeyRef] = key_store.keys()
    return refs


def snapshot(key_store: KeyStore) -> tuple[list[KeyRef], dict[str, Any]]:
    return listed(key_store), key_store.public_jwks()


def next_key(key_store: KeyStore) -> KeyRef:
    return next(ref for ref in listed(key_store) if ref.state == "next")


def test_generate_creates_active_then_next_key(runner: FlaskCliRunner, store: KeyStore) -> None:
    first = invoke(runner, "generate")
    second = invoke(runner, "generate", "--alg", "ES256")

    assert (first.exit_code, second.exit_code) == (0, 0)
    states = {ref.kid: ref.state for ref in listed(store)}
    assert states == {first.stdout.strip(): "active", second.stdout.strip(): "next"}


def test_generate_rsa_with_lower_case_alg(runner: FlaskCliRunner, store: KeyStore) -> None:
    result = invoke(runner, "generate", "--alg", "rs256")

    assert result.exit_code == 0
    assert store.signing_key("RS256").kid == result.stdout.strip()


def test_list_prints_a_table_and_json(
    runner: FlaskCliRunner, store: KeyStore, clock: Clock
) -> None:
    store.generate("ES256")
    store.generate("ES256", state="next")
    clock.advance(DEFAULT_ACTIVATION_DELAY)
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


def test_rotate_without_next_key_publishes_one_and_says_when_to_rotate_again(
    runner: FlaskCliRunner, store: KeyStore
) -> None:
    old = store.generate("ES256")

    result = invoke(runner, "rotate")

    assert result.exit_code == 0
    upcoming = next_key(store)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["active", old.kid]
    assert lines[1].split() == ["next", upcoming.kid]
    assert "The active key is unchanged" in lines[2]
    assert "'idp keys rotate --alg ES256' again from 2025-01-01T00:05:00+00:00" in lines[2]
    assert store.signing_key("ES256") == old


def test_rotate_promotes_a_next_key_published_for_the_jwks_cache_lifetime(
    runner: FlaskCliRunner, store: KeyStore, clock: Clock
) -> None:
    old = store.generate("ES256")
    upcoming = store.generate("ES256", state="next")
    clock.advance(DEFAULT_ACTIVATION_DELAY)

    result = invoke(runner, "rotate")

    assert result.exit_code == 0
    fresh = next_key(store)
    assert result.stdout.split() == ["active", upcoming.kid, "next", fresh.kid]
    assert store.signing_key("ES256").kid == upcoming.kid
    assert {ref.kid: ref.state for ref in listed(store)}[old.kid] == "retired"


def test_rotate_immediately_makes_an_unfetched_next_key_sign(
    runner: FlaskCliRunner, store: KeyStore
) -> None:
    store.generate("ES256")
    upcoming = store.generate("ES256", state="next")

    result = invoke(runner, "rotate", "--immediately")

    assert result.exit_code == 0
    assert result.stdout.split()[:2] == ["active", upcoming.kid]
    assert store.signing_key("ES256").kid == upcoming.kid


def test_retire_takes_a_kid_that_starts_with_a_dash(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "retire", "-no-such-kid")
    assert "no signing key with kid '-no-such-kid'" in result.output


def test_retire_a_next_key(runner: FlaskCliRunner, store: KeyStore) -> None:
    store.generate("ES256")
    upcoming = store.generate("ES256", state="next")

    result = invoke(runner, "retire", upcoming.kid)

    assert (result.exit_code, result.stdout) == (0, f"retired {upcoming.kid}\n")


def test_retire_the_active_key_immediately(runner: FlaskCliRunner, store: KeyStore) -> None:
    active = store.generate("ES256")
    upcoming = store.generate("ES256", state="next")

    result = invoke(runner, "retire", "--immediately", active.kid)

    assert (result.exit_code, result.stdout) == (0, f"retired {active.kid}\n")
    assert store.signing_key("ES256").kid == upcoming.kid


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retire", "no-such-kid"], "Error: no signing key with kid 'no-such-kid'"),
        (
            ["retire", "{active}"],
            "Error: refusing to retire {active}: it is the only active RS256 key",
        ),
        (["generate", "--alg", "ES256"], "Error: a next ES256 key already exists"),
        (
            ["rotate", "--alg", "ES256"],
            "Error: the next ES256 key {next} was published at 2025-01-01T00:00:00+00:00; "
            "relying parties may cache the JWKS for 300 s, so it can sign from "
            "2025-01-01T00:05:00+00:00: rotate again then, or pass --immediately",
        ),
        (
            ["retire", "{es256}"],
            "Error: the next ES256 key {next} was published at 2025-01-01T00:00:00+00:00",
        ),
    ],
)
def test_refusals_exit_non_zero_and_change_nothing(
    runner: FlaskCliRunner, store: KeyStore, args: list[str], message: str
) -> None:
    active = store.generate("RS256")
    es256 = store.generate("ES256")
    upcoming = store.generate("ES256", state="next")
    before = snapshot(store)
    names = {"active": active.kid, "es256": es256.kid, "next": upcoming.kid}

    result = invoke(runner, *[arg.format(**names) for arg in args])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message.format(**names))
    assert snapshot(store) == before


def test_unknown_alg_is_a_usage_error(runner: FlaskCliRunner, store: KeyStore) -> None:
    result = invoke(runner, "rotate", "--alg", "HS256")

    assert result.exit_code == 2
    assert "HS256" in result.stderr
    assert listed(store) == []
