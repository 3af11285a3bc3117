"""Contract of ``KeyStore``: one suite run against every implementation on this machine.

Variants: ``FileKeyStore`` (the default) and ``Pkcs11KeyStore`` on a SoftHSM2 token of each
test's own (skipped with a reason where SoftHSM2 is not installed). Tokens are made with
``idp.signing.jws.encode_jwt`` and verified with joserfc against the published JWKS only, as an
RP would. Tests specific to the file layout (modes, atomic files, a second process) and to the
token (keys that never leave it, state in labels, module, token and PIN errors) follow the
contract at the end of the module.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import PyKCS11
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, KeySetSerialization, RSAKey

from idp.config import Settings
from idp.signing.files import DEFAULT_RETIRED_RETENTION, FileKeyStore, KeyFileError
from idp.signing.interface import (
    KeyMaterialError,
    KeyRef,
    KeyStore,
    KeyStoreUnavailableError,
    NoSigningKeyError,
)
from idp.signing.jws import encode_jwt
from idp.signing.lifecycle import DEFAULT_ACTIVATION_DELAY
from idp.signing.pkcs11 import Pkcs11KeyStore, Token
from tests.hsm import private_key_labels, token_session

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


@pytest.fixture(params=["file", "pkcs11"])
def key_store(request: pytest.FixtureRequest, keys_path: Path, clock: FakeClock) -> KeyStore:
    """A fresh, empty store of each implementation, with the default retention and ``clock``;
    the PKCS#11 one on an empty SoftHSM2 token (``hsm_token``, a skip without SoftHSM2)."""
    if request.param == "file":
        return FileKeyStore(keys_path, retired_retention=DEFAULT_RETIRED_RETENTION, clock=clock)
    token = request.getfixturevalue("hsm_token")
    store = Pkcs11KeyStore(Token.open(token.address()), clock=clock)
    request.addfinalizer(store.close)
    return store


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


def next_kid(key_store: KeyStore, alg: str = "ES256") -> str:
    return next(ref.kid for ref in listed(key_store) if ref.alg == alg and ref.state == "next")


def full_rotation(key_store: KeyStore, clock: FakeClock, alg: str = "ES256") -> KeyRef:
    """What an operator does: publish a next key, let RPs' JWKS caches expire, rotate again."""
    key_store.rotate(alg)
    clock.advance(DEFAULT_ACTIVATION_DELAY)
    return key_store.rotate(alg)


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
def test_jwks_holds_public_members_only(key_store: KeyStore, clock: FakeClock, alg: str) -> None:
    key_store.generate(alg)
    full_rotation(key_store, clock, alg)  # active, next and retired keys all published

    jwks = key_store.public_jwks()

    assert len(jwks["keys"]) == 3
    for key in jwks["keys"]:
        assert set(key) == PUBLIC_MEMBERS[alg]
        assert not set(key) & PRIVATE_MEMBERS
        assert (key["alg"], key["use"]) == (alg, "sig")


def test_jwks_lists_active_key_first(key_store: KeyStore, clock: FakeClock) -> None:
    key_store.generate("ES256")
    active = full_rotation(key_store, clock)

    assert key_store.public_jwks()["keys"][0]["kid"] == active.kid


def test_keys_are_listed_newest_first(key_store: KeyStore, clock: FakeClock) -> None:
    key_store.generate("ES256")
    key_store.generate("RS256")
    full_rotation(key_store, clock)

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
def test_rotation_never_breaks_an_issued_token(
    key_store: KeyStore, clock: FakeClock, alg: str
) -> None:
    old = key_store.generate(alg)
    old_token = encode_jwt(key_store, old, CLAIMS)

    new = full_rotation(key_store, clock, alg)
    new_token = encode_jwt(key_store, key_store.signing_key(alg), CLAIMS)

    jwks = key_store.public_jwks()
    assert verify(old_token, jwks, alg)[0]["kid"] == old.kid
    assert verify(new_token, jwks, alg)[0]["kid"] == new.kid != old.kid
    states = {ref.kid: ref.state for ref in listed(key_store)}
    assert states[old.kid] == "retired"
    assert sorted(states.values()) == ["active", "next", "retired"]


def test_rotate_promotes_the_prepared_next_key(key_store: KeyStore, clock: FakeClock) -> None:
    old = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")
    clock.advance(DEFAULT_ACTIVATION_DELAY)

    active = key_store.rotate("ES256")

    assert active.kid == upcoming.kid
    assert key_store.signing_key("ES256") == active
    by_kid = {ref.kid: ref for ref in listed(key_store)}
    assert by_kid[old.kid].state == "retired"
    assert by_kid[old.kid].retired_at is not None
    fresh = [ref for ref in by_kid.values() if ref.state == "next"]
    assert len(fresh) == 1
    assert fresh[0].kid not in {old.kid, upcoming.kid}


def test_second_rotation_promotes_the_key_the_first_one_prepared(
    key_store: KeyStore, clock: FakeClock
) -> None:
    key_store.generate("ES256")
    full_rotation(key_store, clock)
    [prepared] = [ref for ref in listed(key_store) if ref.state == "next"]
    clock.advance(DEFAULT_ACTIVATION_DELAY)

    assert key_store.rotate("ES256").kid == prepared.kid


def test_rotate_without_next_key_publishes_one_and_the_active_key_keeps_signing(
    key_store: KeyStore,
) -> None:
    active = key_store.generate("ES256")

    assert key_store.rotate("ES256") == active

    upcoming = next_kid(key_store)
    assert kids(key_store.public_jwks()) == {active.kid, upcoming}
    assert key_store.signing_key("ES256") == active
    token = encode_jwt(key_store, key_store.signing_key("ES256"), CLAIMS)
    assert verify(token, key_store.public_jwks(), "ES256")[0]["kid"] == active.kid


def test_next_key_signs_only_after_the_jwks_cache_lifetime(
    key_store: KeyStore, clock: FakeClock
) -> None:
    """RPs may hold a JWKS fetched just before the next key was published for ``max-age``."""
    active = key_store.generate("ES256")
    key_store.rotate("ES256")
    upcoming = next_kid(key_store)
    before = state_of(key_store)

    with pytest.raises(ValueError, match=f"{upcoming} was published at .*can sign from"):
        key_store.rotate("ES256")
    assert state_of(key_store) == before

    clock.advance(DEFAULT_ACTIVATION_DELAY)
    assert key_store.rotate("ES256").kid == upcoming
    assert {ref.kid: ref.state for ref in listed(key_store)}[active.kid] == "retired"


def test_signs_from_is_publication_plus_the_activation_delay(key_store: KeyStore) -> None:
    key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    assert key_store.activation_delay == DEFAULT_ACTIVATION_DELAY
    assert key_store.signs_from(upcoming) == upcoming.created_at + DEFAULT_ACTIVATION_DELAY


def test_rotate_immediately_promotes_a_next_key_rps_may_not_have(key_store: KeyStore) -> None:
    """The documented override, for a compromised active key."""
    old = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")

    assert key_store.rotate("ES256", immediately=True).kid == upcoming.kid
    assert {ref.kid: ref.state for ref in listed(key_store)}[old.kid] == "retired"


def test_rotate_immediately_without_next_key_replaces_the_active_key(key_store: KeyStore) -> None:
    old = key_store.generate("ES256")

    new = key_store.rotate("ES256", immediately=True)

    assert key_store.signing_key("ES256") == new
    assert new.kid != old.kid
    assert sorted(ref.state for ref in listed(key_store)) == ["active", "next", "retired"]


def test_rotate_without_keys_creates_active_and_next(key_store: KeyStore) -> None:
    active = key_store.rotate("RS256")

    assert key_store.signing_key("RS256") == active
    assert sorted(ref.state for ref in listed(key_store)) == ["active", "next"]


def test_rotation_of_one_alg_leaves_the_other_alone(key_store: KeyStore, clock: FakeClock) -> None:
    rsa = key_store.generate("RS256")
    key_store.generate("ES256")

    full_rotation(key_store, clock)

    assert key_store.signing_key("RS256") == rsa
    assert [ref for ref in listed(key_store) if ref.alg == "RS256"] == [rsa]


def test_retired_key_no_longer_signs(key_store: KeyStore, clock: FakeClock) -> None:
    old = key_store.generate("ES256")
    full_rotation(key_store, clock)

    with pytest.raises(NoSigningKeyError, match=old.kid):
        encode_jwt(key_store, old, CLAIMS)


def test_retired_key_leaves_jwks_after_retention(key_store: KeyStore, clock: FakeClock) -> None:
    old = key_store.generate("ES256")
    full_rotation(key_store, clock)

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


def test_retiring_the_active_key_promotes_the_next_key(
    key_store: KeyStore, clock: FakeClock
) -> None:
    active = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")
    clock.advance(DEFAULT_ACTIVATION_DELAY)

    key_store.retire(active.kid)

    assert key_store.signing_key("ES256").kid == upcoming.kid


def test_retiring_the_active_key_waits_until_rps_can_have_the_next_key(
    key_store: KeyStore,
) -> None:
    active = key_store.generate("ES256")
    upcoming = key_store.generate("ES256", state="next")
    before = state_of(key_store)

    with pytest.raises(ValueError, match=f"retire {active.kid} then, or pass --immediately"):
        key_store.retire(active.kid)
    assert state_of(key_store) == before

    key_store.retire(active.kid, immediately=True)
    assert key_store.signing_key("ES256").kid == upcoming.kid


# --- bad input: a clear error and nothing changed ----------------------------------------------


def populate(key_store: KeyStore, clock: FakeClock) -> KeyStore:
    """ES256 active, next (just published) and retired keys, and an RS256 active key."""
    key_store.generate("ES256")
    full_rotation(key_store, clock)
    key_store.generate("RS256")
    return key_store


@pytest.fixture
def populated(key_store: KeyStore, clock: FakeClock) -> KeyStore:
    return populate(key_store, clock)


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
    pytest.param(
        lambda s: s.rotate("ES256"), ValueError, "can sign from", id="rotate-before-fetchable"
    ),
    pytest.param(
        lambda s: s.retire(s.signing_key("ES256").kid),
        ValueError,
        "can sign from",
        id="retire-active-before-fetchable",
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


def test_key_files_are_private_and_named_by_kid(
    file_store: FileKeyStore, keys_path: Path, clock: FakeClock
) -> None:
    populate(file_store, clock)

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


def test_retire_records_utc_time_in_the_file(
    file_store: FileKeyStore, keys_path: Path, clock: FakeClock
) -> None:
    old = file_store.generate("ES256")
    full_rotation(file_store, clock)

    data = json.loads((keys_path / f"{old.kid}.json").read_text())

    assert data["state"] == "retired"
    assert datetime.fromisoformat(data["retired_at"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(("call", "error", "message"), BAD_CALLS)
def test_bad_input_leaves_the_directory_byte_for_byte(
    file_store: FileKeyStore,
    keys_path: Path,
    clock: FakeClock,
    call: Any,
    error: type[Exception],
    message: str,
) -> None:
    populate(file_store, clock)
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

    new = cli.rotate("ES256", immediately=True)

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


def test_a_key_directory_that_is_not_a_directory_is_reported(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "keys"
    not_a_directory.write_text("")
    store = FileKeyStore(not_a_directory)

    with pytest.raises(KeyFileError, match=r"IDP_KEYS_DIR: cannot use .*: Not a directory"):
        store.keys()
    with pytest.raises(KeyFileError, match="IDP_KEYS_DIR: cannot use"):
        store.generate("ES256")
    assert not_a_directory.read_text() == ""


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


# --- Pkcs11KeyStore specifics --------------------------------------------------------------------

PROTECTION = {
    "CKA_PRIVATE": True,
    "CKA_SENSITIVE": True,
    "CKA_ALWAYS_SENSITIVE": True,
    "CKA_EXTRACTABLE": False,
    "CKA_NEVER_EXTRACTABLE": True,
}
SECRET_PARTS = {"ES256": "CKA_VALUE", "RS256": "CKA_PRIVATE_EXPONENT"}
OTHER_LABEL = "another application's key"


@pytest.fixture
def token_store(hsm_token: Any, clock: FakeClock) -> Iterator[Pkcs11KeyStore]:
    store = Pkcs11KeyStore(Token.open(hsm_token.address()), clock=clock)
    yield store
    store.close()


def private_key_handles(session: Any) -> list[Any]:
    return list(session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]))


def attribute(session: Any, handle: Any, name: str) -> Any:
    return session.getAttributeValue(handle, [PyKCS11.CKA[name]])[0]


@pytest.mark.parametrize("alg", ALGS)
def test_private_keys_are_generated_in_the_token_and_never_leave_it(
    token_store: Pkcs11KeyStore, hsm_token: Any, alg: str
) -> None:
    token_store.generate(alg)

    with token_session(hsm_token) as session:
        [handle] = private_key_handles(session)
        flags = {name: attribute(session, handle, name) for name in PROTECTION}
        secret = attribute(session, handle, SECRET_PARTS[alg])
        with pytest.raises(PyKCS11.PyKCS11Error, match="CKR_ATTRIBUTE_READ_ONLY"):
            session.setAttributeValue(handle, [(PyKCS11.CKA_EXTRACTABLE, True)])

    assert flags == PROTECTION
    assert secret is None  # the token answers CKR_ATTRIBUTE_SENSITIVE: no value comes out


def test_states_are_kept_in_the_labels_on_the_token(
    token_store: Pkcs11KeyStore, hsm_token: Any, clock: FakeClock
) -> None:
    """Every instance using the token sees the same states: they are on the token itself."""
    token_store.generate("ES256")
    full_rotation(token_store, clock)

    labels = private_key_labels(hsm_token)

    states = [label.split()[:3] for label in labels]
    assert sorted(states) == [
        ["idp-jws", "ES256", state] for state in ["active", "next", "retired"]
    ]
    retired = next(label for label in labels if "retired" in label)
    assert len(retired.split()) == 5  # created and retired, UTC
    assert all(len(label) <= 64 for label in labels)


def test_a_second_store_on_the_token_sees_every_change(
    token_store: Pkcs11KeyStore, hsm_token: Any
) -> None:
    """As a second provider instance would; across processes see the CLI tests."""
    other = Pkcs11KeyStore(Token.open(hsm_token.address()))
    try:
        old = other.generate("ES256")
        assert token_store.signing_key("ES256") == old

        new = other.rotate("ES256", immediately=True)

        assert token_store.signing_key("ES256") == new
        assert token_store.public_jwks() == other.public_jwks()
        with pytest.raises(NoSigningKeyError, match=old.kid):
            token_store.sign(old, b"data")
    finally:
        other.close()


def test_objects_of_other_applications_are_left_alone(
    token_store: Pkcs11KeyStore, hsm_token: Any
) -> None:
    with token_session(hsm_token) as session:
        generate_other_key(session, OTHER_LABEL)

    ref = token_store.generate("ES256")
    token_store.rotate("ES256", immediately=True)

    assert ref.kid not in {key.kid for key in listed(token_store) if key.state != "retired"}
    assert len(token_store.public_jwks()["keys"]) == 3
    assert OTHER_LABEL in private_key_labels(hsm_token)


def generate_other_key(session: Any, label: str, *, extractable: bool = False) -> None:
    common = [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_LABEL, label), (PyKCS11.CKA_ID, b"x")]
    session.generateKeyPair(
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_EC_PARAMS, bytes.fromhex("06082a8648ce3d030107")),
            *common,
        ],
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, not extractable),
            (PyKCS11.CKA_EXTRACTABLE, extractable),
            (PyKCS11.CKA_SIGN, True),
            *common,
        ],
        mecha=PyKCS11.MechanismECGENERATEKEYPAIR,
    )


def test_a_key_that_could_leave_the_token_is_refused(
    token_store: Pkcs11KeyStore, hsm_token: Any
) -> None:
    """Someone put an extractable key under our label: it must not sign or be published."""
    with token_session(hsm_token) as session:
        generate_other_key(session, "idp-jws ES256 active 20250101T000000Z", extractable=True)

    with pytest.raises(KeyMaterialError, match="not sensitive and non-extractable"):
        token_store.signing_key("ES256")
    with pytest.raises(KeyMaterialError, match="IDP_PKCS11_TOKEN_LABEL"):
        token_store.public_jwks()


@pytest.mark.parametrize(
    "label",
    ["idp-jws ES256 active", "idp-jws HS256 active 20250101T000000Z", "idp-jws ES256 gone 2025"],
)
def test_a_label_this_store_did_not_write_is_reported(
    token_store: Pkcs11KeyStore, hsm_token: Any, label: str
) -> None:
    with token_session(hsm_token) as session:
        generate_other_key(session, label)

    with pytest.raises(KeyMaterialError, match="is not one this store wrote") as caught:
        token_store.keys()
    assert label in str(caught.value)


def test_signing_survives_a_logout_elsewhere_in_the_process(
    token_store: Pkcs11KeyStore, hsm_token: Any
) -> None:
    """Login state is per application (ukey §1): the store logs in again and signs."""
    ref = token_store.generate("ES256")
    with token_session(hsm_token) as session:
        session.logout()

    token = encode_jwt(token_store, ref, CLAIMS)

    assert verify(token, token_store.public_jwks(), "ES256")[1] == CLAIMS


def test_a_closed_store_refuses_to_sign(token_store: Pkcs11KeyStore) -> None:
    ref = token_store.generate("ES256")
    token_store.close()

    with pytest.raises(KeyStoreUnavailableError):
        token_store.sign(ref, b"data")


def module_loaded(module: str) -> bool:
    return module in PyKCS11.PyKCS11Lib._loaded_libs


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pin": "999999"}, r"IDP_PKCS11_PIN: the token refused the PIN \(CKR_PIN_INCORRECT\)"),
        (
            {"pin": "999999", "pin_variable": "IDP_PKCS11_PIN_FILE"},
            "IDP_PKCS11_PIN_FILE: the token refused the PIN",
        ),
        (
            {"token_label": "nope"},
            "IDP_PKCS11_TOKEN_LABEL: no token labelled 'nope' in .*'idp-signing'",
        ),
        ({"token_label": "", "slot": 424242}, "IDP_PKCS11_SLOT: no token in slot 424242"),
        ({"module": "/nonexistent/libpkcs11.so"}, "IDP_PKCS11_MODULE: cannot load"),
    ],
)
def test_a_token_that_cannot_be_used_is_refused_naming_the_setting(
    hsm_token: Any, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(KeyMaterialError, match=message) as caught:
        Token.open(hsm_token.address(**changes))

    assert "999999" not in str(caught.value)  # a PIN is never repeated
    assert not module_loaded(hsm_token.module)  # nothing stays loaded


def test_the_token_is_found_by_slot_id_too(hsm_token: Any) -> None:
    with token_session(hsm_token) as session:
        slot = session.getSessionInfo().slotID
    store = Pkcs11KeyStore(Token.open(hsm_token.address(token_label="", slot=slot)))
    try:
        assert store.generate("ES256").state == "active"
    finally:
        store.close()


def test_from_settings_reads_the_pin_from_a_file(hsm_token: Any, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(hsm_token.pin + "\n")
    values = hsm_token.settings() | {"pkcs11_pin": "", "pkcs11_pin_file": str(pin_file)}

    store = Pkcs11KeyStore.from_settings(Settings(**values, jwks_max_age=60))
    try:
        assert store.activation_delay == timedelta(seconds=60)
        assert store.generate("RS256").alg == "RS256"
    finally:
        store.close()


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read"), ("\n", "holds no PIN")])
def test_an_unusable_pin_file_is_refused(
    hsm_token: Any, tmp_path: Path, content: str | None, message: str
) -> None:
    pin_file = tmp_path / "pin"
    if content is not None:
        pin_file.write_text(content)
    values = hsm_token.settings() | {"pkcs11_pin": "", "pkcs11_pin_file": str(pin_file)}

    with pytest.raises(KeyMaterialError, match=f"IDP_PKCS11_PIN_FILE: .*{message}"):
        Pkcs11KeyStore.from_settings(Settings(**values))
    assert not module_loaded(hsm_token.module)
