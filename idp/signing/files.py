"""Signing keys as private JWK files under ``keys_dir``: the development and default store.

One key per file, ``<kid>.json``, where ``kid`` is the RFC 7638 thumbprint. Each file is a JWK
(private members included) plus our metadata members ``state``, ``created_at`` and ``retired_at``.
Files are written atomically (temp file + rename), mode 0600, in a 0700 directory.

The store keeps parsed keys in memory and re-reads the directory whenever a file is added,
removed or replaced, so ``idp keys rotate`` run from the CLI reaches a running server without a
restart. Private keys stay inside this module: no method returns them (STYLE.md rule 4).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from idp.config import Settings
from idp.signing.interface import KeyMaterialError, KeyRef, KeyState, NoSigningKeyError
from idp.signing.lifecycle import (
    DEFAULT_ACTIVATION_DELAY,
    DEFAULT_RETIRED_RETENTION,
    KTY,
    PUBLIC_MEMBERS,
    STATES,
    Clock,
    LifecycleKeyStore,
    check_alg,
    utcnow,
)

__all__ = ["DEFAULT_RETIRED_RETENTION", "FileKeyStore", "KeyFileError"]

DEFAULT_RSA_BITS = 2048
RSA_BITS = frozenset({2048, 3072})
PRIVATE_MEMBERS = {"EC": ("d",), "RSA": ("d", "p", "q", "dp", "dq", "qi")}

Jwk = ECKey | RSAKey
Signature = frozenset[tuple[str, int, int, int]]


class KeyFileError(KeyMaterialError):
    """A file in the key directory is not a key this store wrote; the message names the file."""


@dataclass(frozen=True)
class _Entry:
    """One loaded key: its public handle and the private JWK that never leaves this module."""

    ref: KeyRef
    jwk: Jwk


class FileKeyStore(LifecycleKeyStore):
    """``KeyStore`` over a directory of JWK files (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        *,
        retired_retention: timedelta = DEFAULT_RETIRED_RETENTION,
        activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY,
        rsa_bits: int = DEFAULT_RSA_BITS,
        clock: Clock = utcnow,
    ) -> None:
        if rsa_bits not in RSA_BITS:
            raise ValueError(f"rsa_bits must be one of {sorted(RSA_BITS)}, not {rsa_bits}")
        super().__init__(
            retired_retention=retired_retention, activation_delay=activation_delay, clock=clock
        )
        self.directory = Path(directory)
        self.rsa_bits = rsa_bits
        self._lock = threading.RLock()
        self._cache: dict[str, _Entry] = {}
        self._cache_signature: Signature | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FileKeyStore:
        return cls(
            Path(settings.keys_dir), activation_delay=timedelta(seconds=settings.jwks_max_age)
        )

    # --- storage primitives --------------------------------------------------------------------

    def _current(self) -> dict[str, KeyRef]:
        return {kid: entry.ref for kid, entry in self._entries().items()}

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, KeyRef]]:
        """Serialise changes across threads and processes (``flock`` on the directory) and hand
        out the state read under the lock, so two concurrent rotations cannot interleave."""
        with self._lock:
            try:
                _ensure_directory(self.directory)
            except OSError as error:
                raise _unreadable(self.directory, error) from error
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield self._current()
            finally:
                os.close(fd)  # closing releases the flock

    def _create(self, alg: str, state: KeyState) -> KeyRef:
        jwk = _new_jwk(alg, rsa_bits=self.rsa_bits)
        ref = KeyRef(kid=jwk.thumbprint(), alg=alg, state=state, created_at=self._clock())
        return self._write(_Entry(ref=ref, jwk=jwk))

    def _record(self, ref: KeyRef) -> KeyRef:
        return self._write(_Entry(ref=ref, jwk=self._entries()[ref.kid].jwk))

    def _sign_with(self, ref: KeyRef, data: bytes) -> bytes:
        # ``sign`` has just read the directory to find ``ref`` active: the entry kept since is
        # that reading's or a newer one, and a third reading per signature told nothing new.
        entry = self._cache.get(ref.kid)
        if entry is None:  # gone in a newer reading (another thread's)
            raise NoSigningKeyError(f"key {ref.kid} is not an active signing key")
        return _SIGNERS[ref.alg](entry.jwk, data)

    def _public_members(self, ref: KeyRef) -> dict[str, Any]:
        members: dict[str, Any] = self._entries()[ref.kid].jwk.as_dict(private=False)
        return members

    # --- internals -----------------------------------------------------------------------------

    def _entries(self) -> dict[str, _Entry]:
        """The keys on disk, parsed again only when the directory listing or a file changed."""
        with self._lock:
            try:
                signature = _directory_signature(self.directory)
            except OSError as error:
                raise _unreadable(self.directory, error) from error
            if signature != self._cache_signature:
                self._cache = _load_all(self.directory)
                self._cache_signature = signature
            return self._cache

    def _write(self, entry: _Entry) -> KeyRef:
        _write_atomic(self.directory / f"{entry.ref.kid}.json", _to_json(entry))
        return entry.ref


def _unreadable(directory: Path, error: OSError) -> KeyFileError:
    return KeyFileError(f"IDP_KEYS_DIR: cannot use {directory}: {error.strerror}")


# --- key material ------------------------------------------------------------------------------


def _new_jwk(alg: str, *, rsa_bits: int) -> Jwk:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    return RSAKey.generate_key(rsa_bits, private=True)


def _sign_es256(jwk: Jwk, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as JWS wants it: fixed-width big-endian r || s, not DER (RFC 7518 §3.4)."""
    private = cast(ec.EllipticCurvePrivateKey, jwk.private_key)
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sign_rs256(jwk: Jwk, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3)."""
    private = cast(rsa.RSAPrivateKey, jwk.private_key)
    return private.sign(data, padding.PKCS1v15(), hashes.SHA256())


_SIGNERS: dict[str, Callable[[Jwk, bytes], bytes]] = {"ES256": _sign_es256, "RS256": _sign_rs256}


# --- files -------------------------------------------------------------------------------------


def _key_files(directory: Path) -> list[os.DirEntry[str]]:
    """``*.json`` files; dot files are our temporaries and are never keys. A missing directory
    holds no keys yet; anything else that is not a readable directory is an OSError."""
    if not directory.exists():
        return []
    with os.scandir(directory) as scan:
        return [f for f in scan if f.name.endswith(".json") and not f.name.startswith(".")]


def _directory_signature(directory: Path) -> Signature:
    """Name, inode, mtime and size of every key file: an atomic replace changes the inode, so
    any write is noticed even where mtime resolution is coarse."""
    signature = set()
    for item in _key_files(directory):
        info = item.stat()
        signature.add((item.name, info.st_ino, info.st_mtime_ns, info.st_size))
    return frozenset(signature)


def _load_all(directory: Path) -> dict[str, _Entry]:
    entries = (_read(Path(item.path)) for item in _key_files(directory))
    return {entry.ref.kid: entry for entry in entries}


def _read(path: Path) -> _Entry:
    """Parse and check one key file; any surprise is a KeyFileError naming the file, since a
    half-understood key must not sign."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entry = _from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, JoseError) as error:
        raise KeyFileError(
            f"IDP_KEYS_DIR: {path}: not a valid signing key file: {error}"
        ) from error
    if f"{entry.ref.kid}.json" != path.name:
        raise KeyFileError(
            f"IDP_KEYS_DIR: {path}: file name does not match its kid {entry.ref.kid}"
        )
    return entry


def _from_json(data: dict[str, Any]) -> _Entry:
    alg = data["alg"]
    check_alg(alg)
    kty = KTY[alg]
    members = PUBLIC_MEMBERS[kty] + PRIVATE_MEMBERS[kty]
    jwk = (ECKey if kty == "EC" else RSAKey).import_key({name: data[name] for name in members})
    _check_strength(jwk)
    if data["kid"] != jwk.thumbprint():
        raise ValueError(f"kid {data['kid']} is not the RFC 7638 thumbprint of the key")
    return _Entry(ref=_ref_from_json(data), jwk=jwk)


def _check_strength(jwk: Jwk) -> None:
    if isinstance(jwk, ECKey) and jwk.as_dict(private=False)["crv"] != "P-256":
        raise ValueError("ES256 needs a P-256 key")
    if isinstance(jwk, RSAKey) and cast(rsa.RSAPrivateKey, jwk.private_key).key_size < 2048:
        raise ValueError("RS256 needs an RSA key of at least 2048 bits")


def _ref_from_json(data: dict[str, Any]) -> KeyRef:
    state = data["state"]
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    retired_at = _parse_time(data["retired_at"]) if data.get("retired_at") else None
    if (state == "retired") != (retired_at is not None):
        raise ValueError("retired_at is set exactly when the state is retired")
    created_at = _parse_time(data["created_at"])
    return KeyRef(
        kid=data["kid"], alg=data["alg"], state=state, created_at=created_at, retired_at=retired_at
    )


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _to_json(entry: _Entry) -> bytes:
    ref = entry.ref
    private = entry.jwk.as_dict(private=True)
    kty = KTY[ref.alg]
    data: dict[str, Any] = {
        name: private[name] for name in PUBLIC_MEMBERS[kty] + PRIVATE_MEMBERS[kty]
    }
    data |= {"kid": ref.kid, "alg": ref.alg, "use": "sig", "state": ref.state}
    data |= {"created_at": _format_time(ref.created_at), "retired_at": _format_time(ref.retired_at)}
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _format_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _ensure_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if directory.stat().st_mode & 0o077:
        directory.chmod(0o700)


def _write_atomic(path: Path, content: bytes) -> None:
    """Write to a 0600 temp file in the same directory, fsync, then rename over ``path``: a
    reader sees the old file or the new one, never a partial key."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
