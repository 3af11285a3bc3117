"""Contract of ``KeyStore``: one suite run against every implementation on this machine.

Variants: ``FileKeyStore`` (the default). A PKCS#11 store (SoftHSM2) is added as another param
of the ``key_store`` fixture. Tokens are made with ``idp.signing.jws.encode_jwt`` and verified
with joserfc against the published JWKS only, as an RP would. Tests specific to the file layout
(modes, atomic files, a second process) follow the contract at the end of the module.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, KeySetSerialization, RSAKey

from idp.config import Settings
from idp.signing.files import DEFAULT_RETIRED_RETENTION, FileKeyStore, KeyFileError
from idp.signing.interface import KeyRef, KeyStore, NoSigningKeyError
from idp.signing.jws import encode_jwt

ALGS = ["ES256", "RS256"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
PUBLIC_MEMBERS = {
    "ES256": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "RS256": {"kty", "n", "e", "kid", "alg", "use"},
}
CLAIMS = {"iss": "http://localhost", "sub": "u-1", "aud": "rp", "name": "张三"}


class FakeClock:
    """UTC time that ticks one second per reading, so keys get distinct, ordered timestamps."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys_path(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture(params=["file"])
def key_store(request: pytest.FixtureRequest, keys_path: Path, clock: FakeClock) -> KeyStore:
    """A fresh, empty store of each implementation, with the default retention and ``clock``.

    A PKCS#11 variant goes here as ``pytest.param("pkcs11", marks=...)``, skipping through
    ``missing()`` from tests/conftest.py when SoftHSM2 is absent.
    """
    if request.param == "file":
        return FileKeyStore(keys_path, retired_retention=DEFAULT_RETIRED_RETENTION, clock=clock)
    raise AssertionError(f"unknown key store {request.param}")


def verify(token: str, jwks: dict[str, Any], alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What an RP does: pick the key by ``kid`` from the JWKS and check the signature."""
    decoded = jwt.decode(
        token, KeySet.import_key_set(cast(KeySetSerialization, jwks)), algorithms=[alg]
    )
    return dict(decoded.header), dict(decoded.claims)


def listed(key_store: KeyStore) -> list[KeyRef]:
    """``KeyStore.keys()``, named so ruff's SIM118 does not take it for ``dict.keys()``."""
    refs: list[KeyRef] = key_store.keys()
    return refs


def kids(jwks: dict[str, Any]) -> set[str]:
    return {key["kid"] for key in jwks["keys"]}


def state_of(key_store: KeyStore) -> tuple[list[KeyRef], dict[str, Any]]:
    return key_store.keys(), key_store.public_jwks()


# --- signing and publishing ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_generated_key_is_active_with_thumbprint_kid(key_store: KeyStore, alg: str) -> None:
    ref = key_store.generate(alg)

    assert (ref.alg, ref.state, ref.retired_at) == (alg, "active", None)
    assert ref.created_at.tzinfo is not None
    assert key_store.signing_key(alg) == ref
    assert key_store.keys() == [ref]
    [published] = key_store.public_jwks()["keys"]
    key_class = ECKey if alg == "ES256" else RSAKey
    assert key_class.import_key(published).thumbprint() == ref.kid  # RFC 7638


@pytest.mark.parametrize("alg", ALGS)
def test_token_signed_by_active_key_verifies_with_public_jwks(
    key_store: KeyStore, alg: str
) -> None:
    ref = key_store.generate(alg)

    token = encode_jwt(key_store, ref, CLAIMS)

    header, claims = verify(token, key_store.public_jwks(), alg)
    assert header == {"alg": alg, "kid": ref.kid, "typ": "JWT"}
    assert claims == CLAIMS


@pytest.mark.parametrize(("alg", "length"), [("ES256", 64), ("RS256", 256)])
def test_signature_is_jws_encoded(key_store: KeyStore, alg: str, length: int) -> None:
    """ES256 is raw r||s (RFC 7518 §3.4), not DER; RS256 is the modulus length."""
    ref = key_store.generate(alg)

    assert len(key_store.sign(ref, b"header.payload")) == length


@pytest.mark.parametrize("alg", ALGS)
def test_jwks_holds_public_members_only(key_store: KeyStore, alg: str) -> None:
    key_store.generate(alg)
    key_store.rotate(alg)  # active, next and retired keys all published

    jwks = key_store.public_jwks()

    assert len(jwks["keys"]) == 3
    for key in jwks["keys"]:
        assert set(key) == PUBLIC_MEMBERS[alg]
        assert not set(key) & PRIVATE_MEMBERS
        assert (key["alg"], key["use"]) == (alg, "sig")


def test_jwks_lists_active_key_first(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    active = key_store.rotate("ES256")

    assert key_store.public_jwks()["keys"][0]["kid"] == active.kid


def test_keys_are_listed_newest_first(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    key_store.generate("RS256")
    key_store.rotate("ES256")

    created = [ref.created_at for ref in listed(key_store)]
    assert created == sorted(created, reverse=True)
    assert len(created) == 4


def test_missing_active_key_raises(key_store: KeyStore) -> None:
    key_store.generate("ES256")

    with pytest.raises(NoSigningKeyError, match="RS256"):
        key_store.signing_key("RS256")


def test_next_key_is_published_but_does_not_sign(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    assert upcoming.kid in kids(key_store.public_jwks())
    assert key_store.signing_key("ES256").kid != upcoming.kid
    with pytest.raises(NoSigningKeyError, match=upcoming.kid):
        key_store.sign(upcoming, b"data")


# --- rotation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_rotation_never_breaks_an_issued_token(key_store: KeyStore, alg: str) -> None:
    old = key_store.generate(alg)
    old_token = encode_jwt(key_store, old, CLAIMS)

    new = key_store.rotate(alg)
    new_token = encode_jwt(key_store, key_store.signing_key(alg), CLAIMS)

    jwks = key_store.public_jwks()
    assert verify(old_token, jwks, alg)[0]["kid"] == old.kid
    assert verify(new_token, jwks, alg)[0]["kid"] == new.kid != old.kid
    states = {ref.kid: ref.state for ref in listed(key_store)}
    assert states[old.kid] == "retired"
    assert sorted(states.values()) == ["active", "next", "retired"]


def test_rotate_promotes_the_prepared_next_key(key_store: KeyStore) -> None:
    old = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    active = key_store.rotate("ES256")

    assert active.kid == upcoming.kid
    assert key_store.signing_key("ES256") == active
    by_kid = {ref.kid: ref for ref in listed(key_store)}
    assert by_kid[old.kid].state == "retired"
    assert by_kid[old.kid].retired_at is not None
    fresh = [ref for ref in by_kid.values() if ref.state == "next"]
    assert len(fresh) == 1
    assert fresh[0].kid not in {old.kid, upcoming.kid}


def test_second_rotation_promotes_the_key_the_first_one_prepared(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    key_store.rotate("ES256")
    [prepared] = [ref for ref in listed(key_store) if ref.state == "next"]

    assert key_store.rotate("ES256").kid == prepared.kid


def test_rotate_without_keys_creates_active_and_next(key_store: KeyStore) -> None:
    active = key_store.rotate("RS256")

    assert key_store.signing_key("RS256") == active
    assert sorted(ref.state for ref in listed(key_store)) == ["active", "next"]


def test_rotation_of_one_alg_leaves_the_other_alone(key_store: KeyStore) -> None:
    rsa = key_store.generate("RS256")
    key_store.generate("ES256")

    key_store.rotate("ES256")

    assert key_store.signing_key("RS256") == rsa
    assert [ref for ref in listed(key_store) if ref.alg == "RS256"] == [rsa]


def test_retired_key_no_longer_signs(key_store: KeyStore) -> None:
    old = key_store.generate("ES256")
    key_store.rotate("ES256")

    with pytest.raises(NoSigningKeyError, match=old.kid):
        encode_jwt(key_store, old, CLAIMS)


def test_retired_key_leaves_jwks_after_retention(key_store: KeyStore, clock: FakeClock) -> None:
    old = key_store.generate("ES256")
    key_store.rotate("ES256")

    clock.advance(DEFAULT_RETIRED_RETENTION - timedelta(hours=1))
    assert old.kid in kids(key_store.public_jwks())

    clock.advance(timedelta(hours=2))
    jwks = key_store.public_jwks()
    assert old.kid not in kids(jwks)
    assert len(jwks["keys"]) == 2


# --- retire ------------------------------------------------------------------------------------


def test_retire_keeps_key_published_within_retention(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    retired = key_store.retire(upcoming.kid)

    assert (retired.kid, retired.state) == (upcoming.kid, "retired")
    assert retired.retired_at is not None
    assert upcoming.kid in kids(key_store.public_jwks())


def test_retiring_the_active_key_promotes_the_next_key(key_store: KeyStore) -> None:
    active = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    key_store.retire(active.kid)

    assert key_store.signing_key("ES256").kid == upcoming.kid


# --- bad input: a clear error and nothing changed ----------------------------------------------


@pytest.fixture
def populated(key_store: KeyStore) -> KeyStore:
    """ES256 active, next and retired keys, and an RS256 active key."""
    key_store.generate("ES256")
    key_store.rotate("ES256")
    key_store.generate("RS256")
    return key_store


def retired_kid(key_store: KeyStore) -> str:
    return next(ref.kid for ref in listed(key_store) if ref.state == "retired")


BAD_CALLS = [
    pytest.param(
        lambda s: s.generate("HS256"),
        ValueError,
        "unsupported signing algorithm",
        id="generate-alg",
    ),
    pytest.param(
        lambda s: s.generate("ES256"), ValueError, "already exists.*rotate", id="second-active"
    ),
    pytest.param(
        lambda s: s.generate("ES256", state="next"), ValueError, "already exists", id="second-next"
    ),
    pytest.param(
        lambda s: s.generate("ES256", state="retired"),
        ValueError,
        "active or next",
        id="gen-retired",
    ),
    pytest.param(
        lambda s: s.rotate("none"), ValueError, "unsupported signing algorithm", id="rotate-alg"
    ),
    pytest.param(lambda s: s.signing_key("HS256"), ValueError, "unsupported", id="signing-key-alg"),
    pytest.param(
        lambda s: s.retire("no-such-kid"),
        KeyError,
        "no signing key with kid 'no-such-kid'",
        id="retire-unknown",
    ),
    pytest.param(
        lambda s: s.retire(s.signing_key("RS256").kid),
        ValueError,
        "only active RS256 key",
        id="retire-only-active",
    ),
    pytest.param(
        lambda s: s.retire(retired_kid(s)), ValueError, "already retired", id="retire-twice"
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_input_raises_clearly_and_changes_nothing(
    populated: KeyStore, call: Any, error: type[Exception], message: str
) -> None:
    before = state_of(populated)

    with pytest.raises(error, match=message):
        call(populated)

    assert state_of(populated) == before


# --- FileKeyStore specifics ----------------------------------------------------------------------


def directory_contents(path: Path) -> dict[str, bytes]:
    return {item.name: item.read_bytes() for item in sorted(path.iterdir())}


@pytest.fixture
def file_store(keys_path: Path, clock: FakeClock) -> FileKeyStore:
    return FileKeyStore(keys_path, clock=clock)


def test_key_files_are_private_and_named_by_kid(file_store: FileKeyStore, keys_path: Path) -> None:
    file_store.generate("ES256")
    file_store.rotate("ES256")
    file_store.generate("RS256")

    assert stat.S_IMODE(keys_path.stat().st_mode) == 0o700
    files = sorted(keys_path.iterdir())
    assert [f.name for f in files] == sorted(f"{ref.kid}.json" for ref in listed(file_store))
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = json.loads(path.read_text())
        assert "d" in data  # the private JWK lives here and only here
        assert data["kid"] == path.stem
        assert data["state"] in {"active", "next", "retired"}
        assert datetime.fromisoformat(data["created_at"]).utcoffset() == timedelta(0)


def test_retire_records_utc_time_in_the_file(file_store: FileKeyStore, keys_path: Path) -> None:
    old = file_store.generate("ES256")
    file_store.rotate("ES256")

    data = json.loads((keys_path / f"{old.kid}.json").read_text())

    assert data["state"] == "retired"
    assert datetime.fromisoformat(data["retired_at"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_input_leaves_the_directory_byte_for_byte(
    file_store: FileKeyStore, keys_path: Path, call: Any, error: type[Exception], message: str
) -> None:
    file_store.generate("ES256")
    file_store.rotate("ES256")
    file_store.generate("RS256")
    before = directory_contents(keys_path)

    with pytest.raises(error, match=message):
        call(file_store)

    assert directory_contents(keys_path) == before


def test_reads_do_not_create_the_directory(file_store: FileKeyStore, keys_path: Path) -> None:
    assert file_store.public_jwks() == {"keys": []}
    assert file_store.keys() == []
    assert not keys_path.exists()


def test_running_server_sees_a_rotation_made_by_another_process(keys_path: Path) -> None:
    """The CLI and the server are separate processes with separate stores over one directory."""
    server = FileKeyStore(keys_path)
    cli = FileKeyStore(keys_path)
    old = cli.generate("ES256")
    assert server.signing_key("ES256") == old

    new = cli.rotate("ES256")

    assert server.signing_key("ES256") == new
    assert kids(server.public_jwks()) == {ref.kid for ref in listed(cli)}
    cli.retire(next(ref.kid for ref in listed(cli) if ref.state == "next"))
    assert [ref.state for ref in listed(server)].count("next") == 0


def test_unchanged_directory_is_not_parsed_again(
    file_store: FileKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp.signing import files

    file_store.generate("ES256")
    file_store.public_jwks()
    loads: list[Path] = []
    real_load = files._load_all

    def counting_load(path: Path) -> dict[str, Any]:
        loads.append(path)
        return real_load(path)

    monkeypatch.setattr(files, "_load_all", counting_load)

    for _ in range(5):
        file_store.sign(file_store.signing_key("ES256"), b"data")

    assert loads == []


def test_leftover_temporary_file_is_ignored(file_store: FileKeyStore, keys_path: Path) -> None:
    ref = file_store.generate("ES256")
    (keys_path / ".tmpabc.tmp").write_text("{half a key")

    assert file_store.signing_key("ES256") == ref


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{half a key", "not a valid signing key file"),
        ('{"alg": "HS256"}', "unsupported signing algorithm"),
    ],
)
def test_foreign_file_in_directory_is_reported(
    file_store: FileKeyStore, keys_path: Path, content: str, message: str
) -> None:
    file_store.generate("ES256")
    bogus = keys_path / "bogus.json"
    bogus.write_text(content)

    with pytest.raises(KeyFileError, match=message) as caught:
        file_store.signing_key("ES256")
    assert str(bogus) in str(caught.value)


def test_file_renamed_away_from_its_kid_is_reported(
    file_store: FileKeyStore, keys_path: Path
) -> None:
    ref = file_store.generate("ES256")
    os.replace(keys_path / f"{ref.kid}.json", keys_path / "renamed.json")

    with pytest.raises(KeyFileError, match="does not match its kid"):
        file_store.keys()


def test_rsa_3072_keys(keys_path: Path) -> None:
    store = FileKeyStore(keys_path, rsa_bits=3072)
    ref = store.generate("RS256")

    assert len(store.sign(ref, b"data")) == 384
    token = encode_jwt(store, ref, CLAIMS)
    assert verify(token, store.public_jwks(), "RS256")[1] == CLAIMS


def test_unsupported_rsa_size_is_refused(keys_path: Path) -> None:
    with pytest.raises(ValueError, match="rsa_bits"):
        FileKeyStore(keys_path, rsa_bits=1024)


def test_from_settings_uses_keys_dir(keys_path: Path) -> None:
    FileKeyStore(keys_path).generate("ES256")

    store = FileKeyStore.from_settings(Settings(keys_dir=keys_path))

    assert store.directory == keys_path
    assert store.retired_retention == DEFAULT_RETIRED_RETENTION
    assert store.signing_key("ES256").alg == "ES256"
