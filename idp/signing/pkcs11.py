"""Signing keys inside a PKCS#11 token or HSM (SoftHSM2 in development and tests).

Keys are generated on the token as private, sensitive and never-extractable objects: the store
asks the token to sign and reads public keys only. A key that could have left the token (made
outside it, or extractable) is refused rather than used.

Where the state lives: on the token, so every provider instance using the same token (an HSM
partition shared by the provider's hosts) sees the same keys and states, and ``idp keys`` run
anywhere changes them for all. A key pair is two objects sharing a random ``CKA_ID``; the
private key's ``CKA_LABEL`` holds the lifecycle, ``idp-jws <alg> <state> <created>
[<retired>]`` with UTC times such as ``20250101T000000Z``, mirrored on the public key for tools
that list objects without logging in. Objects with other labels are left alone. The ``kid`` is
the RFC 7638 thumbprint of the public key, as for files. Mutations are serialised within one
process only: run ``idp keys`` from one place at a time.

PyKCS11 is untyped; this is the only module that uses it. Token behaviour relied on
(docs/ukey.md §1): login state is per application and token, so a second store in one process
finds the token already logged in; one session serves the process under a lock, because
``C_SignInit``/``C_Sign`` are separate calls; token labels come back padded; SoftHSM has no
``CKM_ECDSA_SHA256``, so ES256 hashes here and signs the digest with ``CKM_ECDSA``, whose output
is the raw ``r || s`` JWS wants.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import PyKCS11
from joserfc.jwk import ECKey, RSAKey

from idp.config import Settings
from idp.signing.interface import (
    ALGORITHMS,
    KeyMaterialError,
    KeyRef,
    KeyState,
    KeyStoreUnavailableError,
)
from idp.signing.jws import b64url
from idp.signing.lifecycle import (
    DEFAULT_ACTIVATION_DELAY,
    DEFAULT_RETIRED_RETENTION,
    STATES,
    Clock,
    LifecycleKeyStore,
    utcnow,
)

LABEL_PREFIX = "idp-jws"
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # DER OID 1.2.840.10045.3.1.7
RSA_BITS = 2048
RSA_EXPONENT = (65537).to_bytes(3, "big")
ES256_SIGNATURE_LENGTH = 64

# The token forgot this session (HSM restart, a logout elsewhere in the process): log in anew.
RECONNECT_ERRORS = frozenset(
    {
        PyKCS11.CKR_SESSION_HANDLE_INVALID,
        PyKCS11.CKR_SESSION_CLOSED,
        PyKCS11.CKR_USER_NOT_LOGGED_IN,
        PyKCS11.CKR_DEVICE_REMOVED,
        PyKCS11.CKR_TOKEN_NOT_PRESENT,
    }
)
LOGGED_IN = frozenset({PyKCS11.CKS_RO_USER_FUNCTIONS, PyKCS11.CKS_RW_USER_FUNCTIONS})
PROTECTION = {  # what a private key must say about itself before it signs
    PyKCS11.CKA_PRIVATE: True,
    PyKCS11.CKA_SENSITIVE: True,
    PyKCS11.CKA_ALWAYS_SENSITIVE: True,
    PyKCS11.CKA_EXTRACTABLE: False,
    PyKCS11.CKA_NEVER_EXTRACTABLE: True,
}

Session = Any  # PyKCS11.Session
Result = TypeVar("Result")


@dataclass(frozen=True)
class TokenAddress:
    """Where the keys are: the module, the token (by label or slot) and its user PIN. The
    ``*_variable`` names are the settings that error messages point at."""

    module: str
    token_label: str = ""
    slot: int | None = None
    pin: str = field(default="", repr=False)
    pin_variable: str = "IDP_PKCS11_PIN"

    @property
    def token_variable(self) -> str:
        return "IDP_PKCS11_SLOT" if self.slot is not None else "IDP_PKCS11_TOKEN_LABEL"

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenAddress:
        pin, pin_variable = _read_pin(settings)
        return cls(
            module=settings.pkcs11_module,
            token_label=settings.pkcs11_token_label,
            slot=settings.pkcs11_slot,
            pin=pin,
            pin_variable=pin_variable,
        )


def _read_pin(settings: Settings) -> tuple[str, str]:
    """The PIN and the variable it came from; a PIN file's first line, without its newline."""
    if not settings.pkcs11_pin_file:
        return settings.pkcs11_pin, "IDP_PKCS11_PIN"
    path = Path(settings.pkcs11_pin_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise KeyMaterialError(f"IDP_PKCS11_PIN_FILE: cannot read {path}: {reason}") from None
    if not lines or not lines[0].strip():
        raise KeyMaterialError(f"IDP_PKCS11_PIN_FILE: {path} holds no PIN on its first line")
    return lines[0].strip(), "IDP_PKCS11_PIN_FILE"


class Token:
    """One logged-in session on the token, used under a lock and opened anew once when the
    token has forgotten it."""

    def __init__(self, address: TokenAddress) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._lib: Any = None
        self._session: Session = None

    @classmethod
    def open(cls, address: TokenAddress) -> Token:
        """Load the module, find the token and log in; KeyMaterialError names the setting
        when one of them does not work (and nothing stays loaded)."""
        token = cls(address)
        token._lib = _load_module(address)
        try:
            with token._lock:
                token._session = token._logged_in_session()
        except BaseException:
            token.close()
            raise
        return token

    def call(self, operation: Callable[[Session], Result]) -> Result:
        """Run ``operation`` on the session; a failure of the token is KeyStoreUnavailableError."""
        with self._lock:
            if self._session is None:
                raise KeyStoreUnavailableError(detail="the PKCS#11 key store is closed")
            try:
                return self._call_once_reconnecting(operation)
            except PyKCS11.PyKCS11Error as error:
                raise KeyStoreUnavailableError(detail=f"PKCS#11: {error}") from error

    def close(self) -> None:
        """Close the session (which logs out once it is the last) and unload the module."""
        with self._lock:
            if self._session is not None:
                with contextlib.suppress(PyKCS11.PyKCS11Error):
                    self._session.closeSession()
                self._session = None
            if self._lib is not None:
                self._lib.unload()
                self._lib = None

    def _call_once_reconnecting(self, operation: Callable[[Session], Result]) -> Result:
        try:
            _check_logged_in(self._session)
            return operation(self._session)
        except PyKCS11.PyKCS11Error as error:
            if error.value not in RECONNECT_ERRORS:
                raise
        with contextlib.suppress(PyKCS11.PyKCS11Error):
            self._session.closeSession()
        self._session = self._logged_in_session()
        return operation(self._session)

    def _logged_in_session(self) -> Session:
        slot = _find_slot(self._lib, self.address)
        session = self._lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        try:
            session.login(self.address.pin)
        except PyKCS11.PyKCS11Error as error:
            if error.value == PyKCS11.CKR_USER_ALREADY_LOGGED_IN:  # another store in this process
                return session
            session.closeSession()
            raise KeyMaterialError(
                f"{self.address.pin_variable}: the token refused the PIN ({_name(error)})"
            ) from None
        return session


def _check_logged_in(session: Session) -> None:
    """A session that lost its login finds no private keys rather than failing, so ask first."""
    if session.getSessionInfo().state not in LOGGED_IN:
        raise PyKCS11.PyKCS11Error(PyKCS11.CKR_USER_NOT_LOGGED_IN)


def _load_module(address: TokenAddress) -> Any:
    lib = PyKCS11.PyKCS11Lib()
    try:
        lib.load(address.module)
    except PyKCS11.PyKCS11Error as error:
        raise KeyMaterialError(
            f"IDP_PKCS11_MODULE: cannot load the PKCS#11 module {address.module}: {error.text}"
        ) from None
    return lib


def _find_slot(lib: Any, address: TokenAddress) -> int:
    """The slot of the token by label (slot ids may change) or by the configured slot id."""
    present = {slot: _token_label(lib, slot) for slot in lib.getSlotList(tokenPresent=True)}
    if address.slot is not None:
        if address.slot in present:
            return address.slot
        raise KeyMaterialError(
            f"IDP_PKCS11_SLOT: no token in slot {address.slot} of {address.module} "
            f"(slots with a token: {', '.join(map(str, present)) or 'none'})"
        )
    for slot, label in present.items():
        if label == address.token_label:
            return slot
    raise KeyMaterialError(
        f"IDP_PKCS11_TOKEN_LABEL: no token labelled {address.token_label!r} in "
        f"{address.module} (tokens: {', '.join(repr(x) for x in present.values()) or 'none'})"
    )


def _token_label(lib: Any, slot: int) -> str:
    """Token labels come back padded with spaces or NULs (docs/ukey.md §1)."""
    label: str = lib.getTokenInfo(slot).label
    return label.rstrip(" \x00")


def _name(error: PyKCS11.PyKCS11Error) -> str:
    return str(PyKCS11.CKR.get(error.value, error.value))


# --- the store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PublicKey:
    """What never changes about a key pair on the token: its kid and public members."""

    kid: str
    members: dict[str, str]


class Pkcs11KeyStore(LifecycleKeyStore):
    """``KeyStore`` on a PKCS#11 token (see the module docstring)."""

    def __init__(
        self,
        token: Token,
        *,
        retired_retention: timedelta = DEFAULT_RETIRED_RETENTION,
        activation_delay: timedelta = DEFAULT_ACTIVATION_DELAY,
        clock: Clock = utcnow,
    ) -> None:
        super().__init__(
            retired_retention=retired_retention, activation_delay=activation_delay, clock=clock
        )
        self.token = token
        self._mutations = threading.RLock()
        self._public: dict[bytes, _PublicKey] = {}  # by CKA_ID
        self._key_ids: dict[str, bytes] = {}  # CKA_ID by kid

    @classmethod
    def from_settings(cls, settings: Settings) -> Pkcs11KeyStore:
        token = Token.open(TokenAddress.from_settings(settings))
        return cls(token, activation_delay=timedelta(seconds=settings.jwks_max_age))

    def close(self) -> None:
        self.token.close()

    # --- storage primitives --------------------------------------------------------------------

    def _current(self) -> dict[str, KeyRef]:
        """Every key pair of this store on the token now, by kid: one listing of the labels."""
        found = {}
        for key_id, label in self.token.call(_labelled_private_keys):
            parsed = _parse_label(label, self.token.address)
            if parsed is not None:
                ref = replace(parsed, kid=self._public_key(key_id, parsed.alg).kid)
                found[ref.kid] = ref
        return found

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, KeyRef]]:
        with self._mutations:
            yield self._current()

    def _create(self, alg: str, state: KeyState) -> KeyRef:
        created_at = _whole_seconds(self._clock())
        key_id = secrets.token_bytes(16)
        label = _label(alg, state, created_at, None)
        self.token.call(lambda session: _generate(session, alg, key_id, label))
        kid = self._public_key(key_id, alg).kid
        return KeyRef(kid=kid, alg=alg, state=state, created_at=created_at)

    def _record(self, ref: KeyRef) -> KeyRef:
        retired_at = _whole_seconds(ref.retired_at) if ref.retired_at else None
        recorded = replace(ref, retired_at=retired_at)
        key_id = self._key_ids[ref.kid]
        label = _label(ref.alg, ref.state, ref.created_at, retired_at)
        self.token.call(lambda session: _relabel(session, key_id, label))
        return recorded

    def _sign_with(self, ref: KeyRef, data: bytes) -> bytes:
        key_id = self._key_ids[ref.kid]
        signature = self.token.call(lambda session: _sign(session, key_id, ref.alg, data))
        if ref.alg == "ES256" and len(signature) != ES256_SIGNATURE_LENGTH:
            raise KeyStoreUnavailableError(
                detail=f"PKCS#11: CKM_ECDSA gave {len(signature)} bytes, not raw r || s"
            )
        return signature

    def _public_members(self, ref: KeyRef) -> dict[str, Any]:
        return dict(self._public[self._key_ids[ref.kid]].members)

    # --- internals -----------------------------------------------------------------------------

    def _public_key(self, key_id: bytes, alg: str) -> _PublicKey:
        """Read once per key pair, after checking that its private key is protected: a key
        that could have left the token is refused, never used. The store's own methods read
        the labels before they use a kid, so every kid they meet is known here."""
        if key_id not in self._public:
            address = self.token.address
            members = self.token.call(
                lambda session: _checked_public_key(session, key_id, alg, address)
            )
            public = _PublicKey(kid=_thumbprint(members), members=members)
            self._public[key_id] = public
            self._key_ids[public.kid] = key_id
        return self._public[key_id]


# --- token operations (each runs inside Token.call) ---------------------------------------------


def _generate(session: Session, alg: str, key_id: bytes, label: str) -> None:
    common = [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_ID, key_id), (PyKCS11.CKA_LABEL, label)]
    private = [
        (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
        (PyKCS11.CKA_PRIVATE, True),
        (PyKCS11.CKA_SENSITIVE, True),
        (PyKCS11.CKA_EXTRACTABLE, False),
        (PyKCS11.CKA_SIGN, True),
        *common,
    ]
    public = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_VERIFY, True), *common]
    if alg == "ES256":
        public += [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC), (PyKCS11.CKA_EC_PARAMS, P256_PARAMS)]
        private += [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC)]
        mechanism = PyKCS11.MechanismECGENERATEKEYPAIR
    else:
        public += [
            (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
            (PyKCS11.CKA_MODULUS_BITS, RSA_BITS),
            (PyKCS11.CKA_PUBLIC_EXPONENT, RSA_EXPONENT),
        ]
        private += [(PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA)]
        mechanism = PyKCS11.MechanismRSAGENERATEKEYPAIR
    session.generateKeyPair(public, private, mecha=mechanism)


def _labelled_private_keys(session: Session) -> list[tuple[bytes, str]]:
    """(CKA_ID, CKA_LABEL) of every private key on the token."""
    found = []
    for handle in session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)]):
        label, key_id = session.getAttributeValue(handle, [PyKCS11.CKA_LABEL, PyKCS11.CKA_ID])
        found.append((bytes(key_id), str(label).rstrip(" \x00")))
    return found


def _one(session: Session, object_class: int, key_id: bytes) -> Any:
    handles = session.findObjects([(PyKCS11.CKA_CLASS, object_class), (PyKCS11.CKA_ID, key_id)])
    if len(handles) != 1:
        raise KeyStoreUnavailableError(
            detail=f"PKCS#11: {len(handles)} objects of class {object_class} with one CKA_ID"
        )
    return handles[0]


def _relabel(session: Session, key_id: bytes, label: str) -> None:
    """The private key's label is the state; the public key's mirrors it."""
    for object_class in (PyKCS11.CKO_PRIVATE_KEY, PyKCS11.CKO_PUBLIC_KEY):
        handle = _one(session, object_class, key_id)
        session.setAttributeValue(handle, [(PyKCS11.CKA_LABEL, label)])


def _sign(session: Session, key_id: bytes, alg: str, data: bytes) -> bytes:
    private = _one(session, PyKCS11.CKO_PRIVATE_KEY, key_id)
    if alg == "ES256":
        digest = hashlib.sha256(data).digest()
        return bytes(session.sign(private, digest, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA)))
    mechanism = PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)
    return bytes(session.sign(private, data, mechanism))


def _checked_public_key(
    session: Session, key_id: bytes, alg: str, address: TokenAddress
) -> dict[str, str]:
    private = _one(session, PyKCS11.CKO_PRIVATE_KEY, key_id)
    flags = session.getAttributeValue(private, list(PROTECTION))
    if any(bool(flag) != wanted for flag, wanted in zip(flags, PROTECTION.values(), strict=True)):
        raise KeyMaterialError(
            f"{address.token_variable}: the private key {key_id.hex()} on the token is not "
            "sensitive and non-extractable from its generation on; generate keys with "
            "'idp keys generate' instead of importing them"
        )
    public = _one(session, PyKCS11.CKO_PUBLIC_KEY, key_id)
    if alg == "ES256":
        return _ec_public(session, public, key_id, address)
    return _rsa_public(session, public, key_id, address)


def _ec_public(
    session: Session, handle: Any, key_id: bytes, address: TokenAddress
) -> dict[str, str]:
    params, point = session.getAttributeValue(handle, [PyKCS11.CKA_EC_PARAMS, PyKCS11.CKA_EC_POINT])
    point = _unwrap_octet_string(bytes(point))
    if bytes(params) != P256_PARAMS or len(point) != 65 or point[0] != 0x04:
        raise KeyMaterialError(
            f"{address.token_variable}: the ES256 key {key_id.hex()} is not an EC P-256 key"
        )
    return {"kty": "EC", "crv": "P-256", "x": b64url(point[1:33]), "y": b64url(point[33:])}


def _rsa_public(
    session: Session, handle: Any, key_id: bytes, address: TokenAddress
) -> dict[str, str]:
    modulus, exponent = session.getAttributeValue(
        handle, [PyKCS11.CKA_MODULUS, PyKCS11.CKA_PUBLIC_EXPONENT]
    )
    modulus = bytes(modulus).lstrip(b"\x00")
    if len(modulus) * 8 < RSA_BITS:
        raise KeyMaterialError(
            f"{address.token_variable}: the RS256 key {key_id.hex()} is shorter than "
            f"{RSA_BITS} bits"
        )
    return {"kty": "RSA", "n": b64url(modulus), "e": b64url(bytes(exponent).lstrip(b"\x00"))}


def _unwrap_octet_string(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (``04 41 04‖X‖Y``); some modules give the raw point."""
    if len(value) == 67 and value[:2] == b"\x04\x41":
        return value[2:]
    return value


# --- labels and kids ---------------------------------------------------------------------------


def _label(alg: str, state: KeyState, created_at: datetime, retired_at: datetime | None) -> str:
    times = [created_at] + ([retired_at] if retired_at else [])
    return " ".join([LABEL_PREFIX, alg, state, *(t.strftime(TIME_FORMAT) for t in times)])


def _parse_label(label: str, address: TokenAddress) -> KeyRef | None:
    """The lifecycle a label records (kid still to fill in); None for other objects."""
    parts = label.split()
    if not parts or parts[0] != LABEL_PREFIX:
        return None
    try:
        return _ref_from_parts(parts[1:])
    except ValueError as error:
        raise KeyMaterialError(
            f"{address.token_variable}: the key labelled {label!r} on the token is not one "
            f"this store wrote: {error}"
        ) from None


def _ref_from_parts(parts: list[str]) -> KeyRef:
    if len(parts) not in (3, 4):
        raise ValueError("expected '<alg> <state> <created> [<retired>]'")
    alg, state, *times = parts
    if alg not in ALGORITHMS or state not in STATES:
        raise ValueError(f"unknown algorithm or state {alg!r} {state!r}")
    created_at, *retired = (_parse_time(value) for value in times)
    if (state == "retired") != bool(retired):
        raise ValueError("a retirement time is there exactly when the state is retired")
    return KeyRef(
        kid="",
        alg=alg,
        state=state,  # checked against STATES above
        created_at=created_at,
        retired_at=retired[0] if retired else None,
    )


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


def _whole_seconds(moment: datetime) -> datetime:
    """Labels record seconds; the KeyRef handed out says what was recorded."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _thumbprint(public: dict[str, str]) -> str:
    key = ECKey.import_key(public) if public["kty"] == "EC" else RSAKey.import_key(public)  # type: ignore[arg-type]
    thumbprint: str = key.thumbprint()
    return thumbprint
