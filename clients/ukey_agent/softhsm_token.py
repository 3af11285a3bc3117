"""Isolated SoftHSM2 tokens that look like a 法人一证通 UKey, for the agent's tests, browser tests
and ``make run``.

Each token directory holds its own ``softhsm2.conf`` (file object store) and ``tokens/``; point
``SOFTHSM2_CONF`` at the returned path **before** loading the PKCS#11 module (SoftHSM reads it in
``C_Initialize``). Keys are made in ``cryptography`` and imported (RSA key generation on the token
costs 60–120 ms, import about 13 ms), each with its certificate under the same ``CKA_ID``, the way
CA issuance software fills real tokens.

PyKCS11 reference-counts loaded modules by path: while any ``PyKCS11Lib`` of the same module is
loaded in this process, a new ``load()`` reuses the already initialised module and its old
``SOFTHSM2_CONF``. So :func:`make_soft_token` refuses to run while the module is loaded, and every
user must ``unload()`` before the configuration is switched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import PyKCS11
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # DER OID 1.2.840.10045.3.1.7
CONF_NAME = "softhsm2.conf"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def softhsm_module() -> str | None:
    """The SoftHSM2 PKCS#11 module: ``$SOFTHSM2_MODULE`` or the first existing Debian path."""
    candidates = [os.environ.get("SOFTHSM2_MODULE", ""), *SOFTHSM_MODULES]
    return next((path for path in candidates if path and Path(path).is_file()), None)


def key_id(cert_der: bytes) -> bytes:
    """A CKA_ID from the certificate's public key, as issuance software derives it (20 bytes)."""
    spki = (
        x509.load_der_x509_certificate(cert_der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return hashlib.sha256(spki).digest()[:20]


def write_conf(directory: Path) -> Path:
    """Create ``directory/softhsm2.conf`` and ``directory/tokens`` (idempotent); return the conf."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / CONF_NAME
    if not conf.exists():
        conf.write_text(
            f"directories.tokendir = {tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
        )
    return conf


@contextmanager
def loaded_module(conf: Path, *, module: str | None = None) -> Iterator[PyKCS11.PyKCS11Lib]:
    """Load the module with ``SOFTHSM2_CONF=conf`` for the duration of the block, then unload it
    and restore the environment."""
    path = module or softhsm_module()
    if path is None:
        raise RuntimeError("SoftHSM2 module not found (apt-get install softhsm2)")
    if path in PyKCS11.PyKCS11Lib._loaded_libs:
        raise RuntimeError(
            f"{path} is already loaded in this process; unload every PyKCS11Lib before switching "
            "SOFTHSM2_CONF (PyKCS11 reuses the initialised module)"
        )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    lib = PyKCS11.PyKCS11Lib()
    try:
        lib.load(path)
        yield lib
    finally:
        lib.unload()
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


def _label_of(lib: PyKCS11.PyKCS11Lib, slot: int) -> str:
    """Labels come back padded with spaces or NULs (docs/ukey.md §1)."""
    return lib.getTokenInfo(slot).label.rstrip(" \x00")


def _initialised(lib: PyKCS11.PyKCS11Lib, slot: int) -> bool:
    return bool(lib.getTokenInfo(slot).flags & PyKCS11.CKF_TOKEN_INITIALIZED)


def _init_token(lib: PyKCS11.PyKCS11Lib, *, label: str, pin: str, so_pin: str) -> None:
    """Initialise SoftHSM's free slot with ``label`` and set the user PIN."""
    slots = lib.getSlotList(tokenPresent=True)
    if any(_initialised(lib, s) and _label_of(lib, s) == label for s in slots):
        raise ValueError(f"a token labelled {label!r} already exists in this directory")
    free = next(s for s in slots if not _initialised(lib, s))
    lib.initToken(free, so_pin, label.ljust(32))
    slot = _slot_by_label(lib, label)
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    try:
        session.login(so_pin, PyKCS11.CKU_SO)
        session.initPin(pin)
        session.logout()
    finally:
        session.closeSession()


def _slot_by_label(lib: PyKCS11.PyKCS11Lib, label: str) -> int:
    """Slot ids change after initialisation, so tokens are always found by label."""
    for slot in lib.getSlotList(tokenPresent=True):
        if _initialised(lib, slot) and _label_of(lib, slot) == label:
            return slot
    raise LookupError(f"no token labelled {label!r}")


@contextmanager
def user_session(conf: Path, *, label: str, pin: str) -> Iterator[PyKCS11.Session]:
    """A logged-in read/write session on the token ``label``; logs out and unloads at the end."""
    with loaded_module(conf) as lib:
        slot = _slot_by_label(lib, label)
        session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        try:
            session.login(pin)
            yield session
            session.logout()
        finally:
            session.closeSession()


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _rsa_templates(key: rsa.RSAPrivateKey) -> tuple[list, list]:
    """Private and public key attributes of an RSA key (PKCS#11 v2.40 §2.1.2/2.1.3)."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    private = [
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_MODULUS, _int_bytes(public.n)),
        (PyKCS11.CKA_PUBLIC_EXPONENT, _int_bytes(public.e)),
        (PyKCS11.CKA_PRIVATE_EXPONENT, _int_bytes(numbers.d)),
        (PyKCS11.CKA_PRIME_1, _int_bytes(numbers.p)),
        (PyKCS11.CKA_PRIME_2, _int_bytes(numbers.q)),
        (PyKCS11.CKA_EXPONENT_1, _int_bytes(numbers.dmp1)),
        (PyKCS11.CKA_EXPONENT_2, _int_bytes(numbers.dmq1)),
        (PyKCS11.CKA_COEFFICIENT, _int_bytes(numbers.iqmp)),
    ]
    public_template = [
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_RSA),
        (PyKCS11.CKA_MODULUS, _int_bytes(public.n)),
        (PyKCS11.CKA_PUBLIC_EXPONENT, _int_bytes(public.e)),
    ]
    return private, public_template


def _ec_templates(key: ec.EllipticCurvePrivateKey) -> tuple[list, list]:
    """EC P-256 attributes: CKA_EC_PARAMS is the DER OID, CKA_EC_POINT a DER OCTET STRING."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("only EC P-256 keys are supported")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = [
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_EC_PARAMS, P256_PARAMS),
        (PyKCS11.CKA_VALUE, key.private_numbers().private_value.to_bytes(32, "big")),
    ]
    public = [
        (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_EC),
        (PyKCS11.CKA_EC_PARAMS, P256_PARAMS),
        (PyKCS11.CKA_EC_POINT, bytes([0x04, len(point)]) + point),
    ]
    return private, public


def import_key_pair(session: PyKCS11.Session, *, key: PrivateKey, cert_der: bytes) -> bytes:
    """Store private key, public key and certificate under one CKA_ID; return that id."""
    cka_id = key_id(cert_der)
    cert = x509.load_der_x509_certificate(cert_der)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ValueError("the key does not belong to the certificate")
    if isinstance(key, rsa.RSAPrivateKey):
        private, public = _rsa_templates(key)
    else:
        private, public = _ec_templates(key)
    label = cert.subject.rfc4514_string()[:64]
    common = [(PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_ID, cka_id), (PyKCS11.CKA_LABEL, label)]
    session.createObject(
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY),
            (PyKCS11.CKA_PRIVATE, True),
            (PyKCS11.CKA_SENSITIVE, True),
            (PyKCS11.CKA_EXTRACTABLE, False),
            (PyKCS11.CKA_SIGN, True),
            *common,
            *private,
        ]
    )
    session.createObject(
        [(PyKCS11.CKA_CLASS, PyKCS11.CKO_PUBLIC_KEY), (PyKCS11.CKA_VERIFY, True), *common, *public]
    )
    store_certificate(session, cert_der=cert_der, cka_id=cka_id)
    return cka_id


def store_certificate(session: PyKCS11.Session, *, cert_der: bytes, cka_id: bytes = b"") -> None:
    """Store an X.509 certificate object (public, on the token); CA certs get an empty id."""
    cert = x509.load_der_x509_certificate(cert_der)
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    session.createObject(
        [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE),
            (PyKCS11.CKA_CERTIFICATE_TYPE, PyKCS11.CKC_X_509),
            (PyKCS11.CKA_TOKEN, True),
            (PyKCS11.CKA_PRIVATE, False),
            (PyKCS11.CKA_ID, cka_id),
            (PyKCS11.CKA_LABEL, cert.subject.rfc4514_string()[:64]),
            (PyKCS11.CKA_SUBJECT, cert.subject.public_bytes()),
            (PyKCS11.CKA_ISSUER, cert.issuer.public_bytes()),
            (PyKCS11.CKA_SERIAL_NUMBER, bytes([0x02, len(serial)]) + serial),
            (PyKCS11.CKA_VALUE, cert_der),
        ]
    )


@dataclass(frozen=True, kw_only=True)
class SoftToken:
    """One SoftHSM2 token in its own directory; ``conf`` is what ``SOFTHSM2_CONF`` must name."""

    directory: Path
    label: str
    pin: str
    so_pin: str = field(repr=False)

    @property
    def conf(self) -> Path:
        return self.directory / CONF_NAME

    def add_key_pair(self, *, key: PrivateKey, cert_der: bytes) -> bytes:
        """Add another key + certificate (e.g. the encryption certificate real UKeys also hold)."""
        with user_session(self.conf, label=self.label, pin=self.pin) as session:
            return import_key_pair(session, key=key, cert_der=cert_der)

    def add_certificates(self, certs: Iterable[bytes]) -> None:
        """Add certificates without a key (the issuing CA chain)."""
        with user_session(self.conf, label=self.label, pin=self.pin) as session:
            for cert_der in certs:
                store_certificate(session, cert_der=cert_der)


def create_soft_token(
    directory: Path,
    *,
    label: str,
    pin: str,
    so_pin: str,
    key: PrivateKey,
    cert_der: bytes,
    extra_certs: Iterable[bytes] = (),
    extra_keys: Iterable[tuple[PrivateKey, bytes]] = (),
) -> SoftToken:
    """Initialise a token labelled ``label`` in ``directory`` (several tokens may share one
    directory, i.e. several UKeys plugged in) holding ``key`` + ``cert_der``, every
    ``(key, cert)`` of ``extra_keys`` and the key-less ``extra_certs``."""
    conf = write_conf(directory)
    with loaded_module(conf) as lib:
        _init_token(lib, label=label, pin=pin, so_pin=so_pin)
    token = SoftToken(directory=directory, label=label, pin=pin, so_pin=so_pin)
    with user_session(conf, label=label, pin=pin) as session:
        import_key_pair(session, key=key, cert_der=cert_der)
        for extra_key, extra_cert in extra_keys:
            import_key_pair(session, key=extra_key, cert_der=extra_cert)
        for extra in extra_certs:
            store_certificate(session, cert_der=extra)
    return token


def make_soft_token(
    directory: Path,
    *,
    label: str,
    pin: str,
    so_pin: str,
    key: PrivateKey,
    cert_der: bytes,
    extra_certs: Iterable[bytes] = (),
    extra_keys: Iterable[tuple[PrivateKey, bytes]] = (),
) -> Path:
    """Like :func:`create_soft_token`, returning the ``softhsm2.conf`` path for ``SOFTHSM2_CONF``."""
    return create_soft_token(
        directory,
        label=label,
        pin=pin,
        so_pin=so_pin,
        key=key,
        cert_der=cert_der,
        extra_certs=extra_certs,
        extra_keys=extra_keys,
    ).conf


def empty_token_dir(directory: Path) -> Path:
    """A SoftHSM2 configuration with no initialised token: no UKey plugged in."""
    return write_conf(directory)
