"""``Pkcs11Signer``: RSA and EC P-256 UKeys through their vendor's PKCS#11 module (PyKCS11).

Facts this relies on (docs/ukey.md §1, verified with SoftHSM2 2.6.1):
- tokens are found by serial, never by slot id (slot ids change);
- login state belongs to the application and token, not to a session, so every token operation
  holds one lock and every signing ends with ``C_Logout``;
- ``CKM_ECDSA_SHA256`` is often missing, so ECDSA hashes in software and uses ``CKM_ECDSA``, whose
  output is raw ``r || s``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import PyKCS11
from cryptography import x509

from . import certs
from .errors import AgentError
from .interface import PayloadBuilder, SignedPayload, SigningCertificate, TokenInfo
from .signatures import PSS_SALT_LENGTH, raw_ecdsa, verifies

log = logging.getLogger(__name__)

# The token went away between listing and use.
GONE = {
    PyKCS11.CKR_TOKEN_NOT_PRESENT,
    PyKCS11.CKR_DEVICE_REMOVED,
    PyKCS11.CKR_SLOT_ID_INVALID,
    PyKCS11.CKR_SESSION_CLOSED,
    PyKCS11.CKR_SESSION_HANDLE_INVALID,
}
BAD_PIN = {PyKCS11.CKR_PIN_INCORRECT, PyKCS11.CKR_PIN_INVALID, PyKCS11.CKR_PIN_LEN_RANGE}


def _text(value: str) -> str:
    """PKCS#11 pads fixed-size text fields with spaces (and some modules with NULs)."""
    return value.rstrip(" \x00")


@contextmanager
def pkcs11_errors() -> Iterator[None]:
    """Turn PKCS#11 return codes into the protocol's errors; the code goes to the log only."""
    try:
        yield
    except PyKCS11.PyKCS11Error as error:
        if error.value in GONE:
            raise AgentError("no_token", detail=str(error)) from error
        if error.value == PyKCS11.CKR_PIN_LOCKED:
            raise AgentError("pin_locked", detail=str(error)) from error
        raise AgentError("token_error", detail=str(error)) from error


def wrong_pin(flags: int) -> AgentError:
    """``wrong_pin``, with what the token's flags tell about the remaining tries (PKCS#11 v2.40
    §5.2: FINAL_TRY means one try left; COUNT_LOW only says "few", without a number)."""
    if flags & PyKCS11.CKF_USER_PIN_LOCKED:
        return AgentError("pin_locked")
    if flags & PyKCS11.CKF_USER_PIN_FINAL_TRY:
        return AgentError(
            "wrong_pin", retries_left=1, message="PIN 码错误。再输错一次，UKey 将被锁定。"
        )
    if flags & PyKCS11.CKF_USER_PIN_COUNT_LOW:
        return AgentError(
            "wrong_pin", message="PIN 码错误。剩余尝试次数不多，输错过多 UKey 将被锁定。"
        )
    return AgentError("wrong_pin")


def login(session: Any, pin: str, *, token_flags: Callable[[], int]) -> None:
    """``C_Login`` as the user, mapping PIN failures to ``wrong_pin``/``pin_locked``.

    ``CKR_USER_ALREADY_LOGGED_IN`` (a previous logout failed) is answered by logging out and
    verifying this PIN anyway: a request must never be signed without its own PIN check.
    """
    if token_flags() & PyKCS11.CKF_USER_PIN_LOCKED:
        raise AgentError("pin_locked", detail="CKF_USER_PIN_LOCKED")
    try:
        try:
            session.login(pin)
        except PyKCS11.PyKCS11Error as error:
            if error.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                raise
            session.logout()
            session.login(pin)
    except PyKCS11.PyKCS11Error as error:
        if error.value in BAD_PIN:
            raise wrong_pin(token_flags()) from error
        if error.value == PyKCS11.CKR_PIN_LOCKED:
            raise AgentError("pin_locked", detail=str(error)) from error
        if error.value == PyKCS11.CKR_PIN_EXPIRED:
            message = "UKey 的 PIN 码已过期，请先用 UKey 管理工具修改 PIN 码。"
            raise AgentError("token_error", message=message, detail=str(error)) from error
        raise


def logout(session: Any) -> None:
    """``C_Logout``; a failure is logged, the next login then clears the state (see ``login``)."""
    try:
        session.logout()
    except PyKCS11.PyKCS11Error as error:
        log.warning("C_Logout failed: %s", error)


def sign_with_key(session: Any, key: Any, *, alg: str, data: bytes) -> bytes:
    """One signature on the token in the protocol's encoding (docs/ukey-protocol.md §2)."""
    if alg == "RS256":
        return bytes(session.sign(key, data, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)))
    if alg == "PS256":
        mechanism = PyKCS11.RSA_PSS_Mechanism(
            PyKCS11.CKM_SHA256_RSA_PKCS_PSS,
            PyKCS11.CKM_SHA256,
            PyKCS11.CKG_MGF1_SHA256,
            PSS_SALT_LENGTH,
        )
        return bytes(session.sign(key, data, mechanism))
    if alg == "ES256":
        digest = hashlib.sha256(data).digest()
        return raw_ecdsa(bytes(session.sign(key, digest, PyKCS11.Mechanism(PyKCS11.CKM_ECDSA))))
    raise AgentError("token_error", detail=f"no PKCS#11 mechanism for {alg}")


@dataclass(frozen=True)
class TokenCertificate:
    """A certificate object of the token with the ``CKA_ID`` that pairs it with its key."""

    der: bytes
    cert: x509.Certificate
    cka_id: bytes


class Pkcs11Signer:
    """A :class:`~clients.ukey_agent.interface.TokenSigner` over one PKCS#11 module."""

    def __init__(self, *, module: str, rsa_pss: bool = False) -> None:
        """Load ``module`` (``C_Initialize``); SoftHSM2 reads ``SOFTHSM2_CONF`` at this point."""
        self._lib = PyKCS11.PyKCS11Lib()
        with pkcs11_errors():
            self._lib.load(module)
        self._rsa_pss = rsa_pss
        self._lock = threading.Lock()

    def close(self) -> None:
        """Unload the module (``C_Finalize`` once the process's last user is gone)."""
        with self._lock:
            self._lib.unload()

    # --- tokens ----------------------------------------------------------------------------

    def _slots(self) -> list[int]:
        """Slots with an initialised token (SoftHSM2 always shows one more, uninitialised)."""
        return [
            slot
            for slot in self._lib.getSlotList(tokenPresent=True)
            if self._lib.getTokenInfo(slot).flags & PyKCS11.CKF_TOKEN_INITIALIZED
        ]

    def _info(self, slot: int) -> TokenInfo:
        info = self._lib.getTokenInfo(slot)
        return TokenInfo(
            label=_text(info.label),
            serial=_text(info.serialNumber),
            manufacturer=_text(info.manufacturerID),
            model=_text(info.model),
        )

    def tokens(self) -> list[TokenInfo]:
        """Every present, initialised token."""
        with self._lock, pkcs11_errors():
            return [self._info(slot) for slot in self._slots()]

    def _select(self, token: str | None) -> int:
        """The slot of token serial ``token``, or of the only token when none is named."""
        slots = self._slots()
        if token is not None:
            slots = [s for s in slots if self._info(s).serial == token]
        if not slots:
            raise AgentError("no_token")
        if len(slots) > 1:
            raise AgentError("several_tokens")
        return slots[0]

    @contextmanager
    def _session(self, token: str | None) -> Iterator[tuple[Any, int]]:
        """A read-only session on the chosen token, closed at the end of the block."""
        slot = self._select(token)
        session = self._lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
        try:
            yield session, slot
        finally:
            try:
                session.closeSession()
            except PyKCS11.PyKCS11Error as error:
                log.warning("C_CloseSession failed: %s", error)

    # --- certificates ----------------------------------------------------------------------

    @staticmethod
    def _certificates(session: Any) -> list[TokenCertificate]:
        """Every X.509 certificate object on the token (public objects: no PIN needed)."""
        found: list[TokenCertificate] = []
        template = [
            (PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE),
            (PyKCS11.CKA_CERTIFICATE_TYPE, PyKCS11.CKC_X_509),
        ]
        for handle in session.findObjects(template):
            value, cka_id = session.getAttributeValue(
                handle, [PyKCS11.CKA_VALUE, PyKCS11.CKA_ID], allAsBinary=True
            )
            der = bytes(value or b"")
            cert = certs.load(der)
            if cert is not None:
                found.append(TokenCertificate(der, cert, bytes(cka_id or b"")))
        return found

    def _candidates(self, found: list[TokenCertificate]) -> list[TokenCertificate]:
        """Signing certificates this module can sign for, best first; ``no_signing_certificate``
        when there is none (an encryption certificate alone does not count)."""
        usable = [
            c
            for c in found
            if c.cka_id
            and certs.is_signing_certificate(c.cert)
            and certs.jws_alg(c.cert, rsa_pss=self._rsa_pss)
        ]
        if not usable:
            raise AgentError("no_signing_certificate")
        return sorted(usable, key=lambda c: certs.preference(c.cert))

    @staticmethod
    def _key(session: Any, cls: int, cka_id: bytes) -> Any | None:
        handles = session.findObjects([(PyKCS11.CKA_CLASS, cls), (PyKCS11.CKA_ID, cka_id)])
        return handles[0] if handles else None

    def _describe(
        self, chosen: TokenCertificate, found: list[TokenCertificate]
    ) -> SigningCertificate:
        others = [c.cert for c in found if c is not chosen]
        alg = certs.jws_alg(chosen.cert, rsa_pss=self._rsa_pss) or ""
        return SigningCertificate(
            der=chosen.der, chain=certs.issuer_chain(chosen.cert, others), alg=alg
        )

    def signing_certificate(self, *, token: str | None) -> SigningCertificate:
        """Before login only public objects are visible, so a candidate whose public key object
        is present is preferred; the private key is confirmed when signing."""
        with self._lock, pkcs11_errors(), self._session(token) as (session, _slot):
            found = self._certificates(session)
            candidates = self._candidates(found)
            with_key = [
                c for c in candidates if self._key(session, PyKCS11.CKO_PUBLIC_KEY, c.cka_id)
            ]
            return self._describe((with_key or candidates)[0], found)

    # --- signing -----------------------------------------------------------------------------

    def _paired(
        self, session: Any, candidates: list[TokenCertificate]
    ) -> tuple[TokenCertificate, Any]:
        """The best candidate that has a private key with its ``CKA_ID`` (visible after login)."""
        for candidate in candidates:
            key = self._key(session, PyKCS11.CKO_PRIVATE_KEY, candidate.cka_id)
            if key is not None:
                return candidate, key
        raise AgentError("no_signing_certificate", detail="no private key pairs a signing cert")

    def sign(self, *, token: str | None, pin: str, build_payload: PayloadBuilder) -> SignedPayload:
        """Check for a signing certificate first (no PIN try is wasted on a token that cannot
        sign), then log in, sign, and always log out."""
        with self._lock, pkcs11_errors(), self._session(token) as (session, slot):
            found = self._certificates(session)
            candidates = self._candidates(found)
            login(session, pin, token_flags=lambda: self._lib.getTokenInfo(slot).flags)
            try:
                chosen, key = self._paired(session, candidates)
                described = self._describe(chosen, found)
                payload = build_payload(chosen.der)
                signature = sign_with_key(session, key, alg=described.alg, data=payload)
            finally:
                logout(session)
        if not verifies(chosen.cert, alg=described.alg, data=payload, signature=signature):
            raise AgentError("token_error", detail="token signature does not verify with its cert")
        return SignedPayload(
            payload=payload,
            signature=signature,
            alg=described.alg,
            certificate=described.der,
            chain=described.chain,
        )
