"""The lifecycle of signing keys, the same for every store: which key signs, which keys are
published, and how a key moves from next to active to retired.

A store subclasses ``LifecycleKeyStore`` and supplies the storage primitives (read every key,
create one, record a new state, sign, give the public members). The rules live here once, so
the file and PKCS#11 stores cannot drift apart; ``tests/contracts/test_key_store.py`` holds both
to them.

Relying parties cache the JWKS (``Cache-Control: max-age``, ``IDP_JWKS_MAX_AGE``). A key that
signs before every RP could have fetched it makes their verification fail, so a next key
becomes active only once it has been published for that long (``activation_delay``), unless
the operator overrides it (``immediately=True``), e.g. because the active key is compromised.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from idp.signing.interface import ALGORITHMS, KeyRef, KeyState, NoSigningKeyError

DEFAULT_RETIRED_RETENTION = timedelta(days=2)
"""How long a retired key stays in the JWKS: longer than any token it signed can live, plus
the time RPs may cache the JWKS."""

DEFAULT_ACTIVATION_DELAY = timedelta(seconds=300)
"""How long a new key is published before it may sign: the JWKS cache lifetime."""

STATES: tuple[KeyState, ...] = ("active", "next", "retired")  # also the JWKS order
KTY = {"ES256": "EC", "RS256": "RSA"}
PUBLIC_MEMBERS = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_alg(alg: str) -> None:
    if alg not in ALGORITHMS:
        raise ValueError(
            f"unsupported signing algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}"
        )


class LifecycleKeyStore(ABC):
    """``KeyStore`` rules over storage primitives that subclasses implement."""

    def __init__(
        self,
        *,
        retired_retention: timedelta = DEFAULT_RETIRED_RETENTION,
        activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY,
        clock: Clock = utcnow,
    ) -> None:
        self.retired_retention = retired_retention
        self.activation_delay = activation_delay
        self._clock = clock
        # Public JWKs by key: a kid is the thumbprint of its public key, so a key's public
        # members never change; only the keys published do (read from storage every time).
        self._public_jwks: dict[KeyRef, dict[str, Any]] = {}

    # --- storage primitives --------------------------------------------------------------------

    @abstractmethod
    def _current(self) -> dict[str, KeyRef]:
        """Every key the storage holds now, by kid."""

    @abstractmethod
    def _locked(self) -> contextlib.AbstractContextManager[dict[str, KeyRef]]:
        """Serialise changes and hand out the keys read under the lock."""

    @abstractmethod
    def _create(self, alg: str, state: KeyState) -> KeyRef:
        """Make a new key of ``alg`` in ``state``, created now."""

    @abstractmethod
    def _record(self, ref: KeyRef) -> KeyRef:
        """Store the new state (and retirement time) of an existing key."""

    @abstractmethod
    def _sign_with(self, ref: KeyRef, data: bytes) -> bytes:
        """The JWS signature of ``data`` by ``ref``, which ``sign`` has just found active in the
        store's current keys (``_current``)."""

    @abstractmethod
    def _public_members(self, ref: KeyRef) -> dict[str, Any]:
        """The public JWK members of ``ref`` (at least those in ``PUBLIC_MEMBERS``)."""

    def close(self) -> None:  # noqa: B027  # a store with nothing to release keeps it
        """Release what the store holds open; nothing by default."""

    # --- reading -------------------------------------------------------------------------------

    def keys(self) -> list[KeyRef]:
        """Every key the store holds, newest first."""
        return newest_first(self._current().values())

    def public_jwks(self) -> dict[str, Any]:
        """Public halves of next, active and recently retired keys; the active key comes first
        for clients that ignore ``kid`` and take the first key."""
        refs = [ref for ref in self._current().values() if self._published(ref)]
        refs = sorted(newest_first(refs), key=lambda ref: STATES.index(ref.state))
        known = self._public_jwks
        self._public_jwks = {ref: known.get(ref) or self._public_jwk(ref) for ref in refs}
        return {"keys": [dict(self._public_jwks[ref]) for ref in refs]}

    def signing_key(self, alg: str) -> KeyRef:
        """The active key for ``alg``; the newest one during the instant a rotation has two."""
        check_alg(alg)
        ref = newest(self._current().values(), alg=alg, state="active")
        if ref is None:
            raise NoSigningKeyError(
                f"no active {alg} signing key: run 'idp keys generate --alg {alg}'"
            )
        return ref

    def sign(self, key: KeyRef, data: bytes) -> bytes:
        """Sign with the key as it is stored now: a key retired since ``key`` was fetched no
        longer signs (fail closed)."""
        current = self._current().get(key.kid)
        if current is None or current.state != "active":
            raise NoSigningKeyError(f"key {key.kid} is not an active signing key")
        return self._sign_with(current, data)

    def signs_from(self, ref: KeyRef) -> datetime:
        """When a next key may become active: once every RP could have fetched it."""
        return ref.created_at + self.activation_delay

    # --- lifecycle -----------------------------------------------------------------------------

    def generate(self, alg: str, *, state: KeyState = "active") -> KeyRef:
        """Create an active or next key; refuses a second one of either (rotate replaces keys)."""
        check_alg(alg)
        if state not in ("active", "next"):
            raise ValueError(f"a new key is active or next, not {state!r}")
        with self._locked() as keys:
            existing = newest(keys.values(), alg=alg, state=state)
            if existing is not None:
                hint = "use rotate to replace it" if state == "active" else "rotate promotes it"
                raise ValueError(f"a {state} {alg} key already exists ({existing.kid}); {hint}")
            return self._create(alg, state)

    def rotate(self, alg: str, *, immediately: bool = False) -> KeyRef:
        """Promote the next key to active once RPs have had the JWKS cache lifetime to fetch
        it, retire the old active key and publish a fresh next key; returns the active key.

        Without a next key only a new next key is published and the active key keeps signing;
        rotating again after the delay promotes it. ``immediately`` skips the wait. Promotion is
        written first so a reader always finds an active key."""
        check_alg(alg)
        with self._locked() as keys:
            actives = of(keys.values(), alg=alg, state="active")
            upcoming = newest(keys.values(), alg=alg, state="next")
            if actives and not immediately:
                if upcoming is None:
                    self._create(alg, "next")
                    return newest_first(actives)[0]
                self._refuse_before_fetchable(upcoming, "rotate again then")
            active = self._promote(upcoming) if upcoming else self._create(alg, "active")
            for old in actives:
                self._retire(old)
            self._create(alg, "next")
            return active

    def retire(self, kid: str, *, immediately: bool = False) -> KeyRef:
        """Retire a key; the only active key of its alg is replaced by the next key, refused
        when there is none (retiring never leaves the provider unable to sign) and, unless
        ``immediately``, while RPs may not have fetched that next key yet."""
        with self._locked() as keys:
            ref = keys.get(kid)
            if ref is None:
                raise KeyError(f"no signing key with kid {kid!r}")
            if ref.state == "retired":
                raise ValueError(f"key {kid} is already retired")
            if ref.state == "active" and of(keys.values(), alg=ref.alg, state="active") == [ref]:
                successor = _successor(keys.values(), ref)
                if not immediately:
                    self._refuse_before_fetchable(successor, f"retire {kid} then")
                self._promote(successor)
            return self._retire(ref)

    # --- internals -----------------------------------------------------------------------------

    def _published(self, ref: KeyRef) -> bool:
        if ref.retired_at is None:
            return True
        return self._clock() - ref.retired_at <= self.retired_retention

    def _public_jwk(self, ref: KeyRef) -> dict[str, Any]:
        """Only the public members, listed explicitly: nothing private or internal can slip out."""
        members = self._public_members(ref)
        public = {name: members[name] for name in PUBLIC_MEMBERS[KTY[ref.alg]]}
        return public | {"kid": ref.kid, "alg": ref.alg, "use": "sig"}

    def _refuse_before_fetchable(self, upcoming: KeyRef, then: str) -> None:
        signs_from = self.signs_from(upcoming)
        if self._clock() < signs_from:
            seconds = int(self.activation_delay.total_seconds())
            raise ValueError(
                f"the next {upcoming.alg} key {upcoming.kid} was published at "
                f"{_format(upcoming.created_at)}; relying parties may cache the JWKS for "
                f"{seconds} s, so it can sign from {_format(signs_from)}: {then}, or pass "
                "--immediately if the active key must stop signing now"
            )

    def _promote(self, ref: KeyRef) -> KeyRef:
        return self._record(replace(ref, state="active"))

    def _retire(self, ref: KeyRef) -> KeyRef:
        return self._record(replace(ref, state="retired", retired_at=self._clock()))


def newest_first(refs: Iterable[KeyRef]) -> list[KeyRef]:
    return sorted(refs, key=lambda ref: (ref.created_at, ref.kid), reverse=True)


def of(refs: Iterable[KeyRef], *, alg: str, state: KeyState) -> list[KeyRef]:
    return [ref for ref in refs if ref.alg == alg and ref.state == state]


def newest(refs: Iterable[KeyRef], *, alg: str, state: KeyState) -> KeyRef | None:
    """The newest key of ``alg`` in ``state``, if any."""
    found = newest_first(of(refs, alg=alg, state=state))
    return found[0] if found else None


def _successor(refs: Iterable[KeyRef], ref: KeyRef) -> KeyRef:
    upcoming = newest(refs, alg=ref.alg, state="next")
    if upcoming is None:
        raise ValueError(
            f"refusing to retire {ref.kid}: it is the only active {ref.alg} key and "
            f"there is no next key; run 'idp keys rotate --alg {ref.alg}' instead"
        )
    return upcoming


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
