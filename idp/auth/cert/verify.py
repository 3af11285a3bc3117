"""Certificate login: the checks of docs/ukey-protocol.md §3, in that order, behind one call.

The view decodes the form with :func:`decode_login_form`, then calls :func:`verify_login` with
the provider's origin and a callback that consumes the challenge, and maps the returned
:class:`VerifiedCertificate` (USCC, names, serial) to an account. Every failure is a
:class:`~idp.auth.cert.errors.CertificateLoginError` subclass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

from idp.auth.cert.errors import ChallengeError, MalformedResponseError, NoUsccError
from idp.auth.cert.issuers import (
    certificate_policies,
    check_organisation_certificate,
    extended_key_usages,
)
from idp.auth.cert.payload import (
    b64decode,
    check_certificate_binding,
    check_origin,
    check_timestamp,
    key_description,
    parse_payload,
    verify_signature,
)
from idp.auth.cert.trust import MAX_CHAIN, TrustStore, trust_store
from idp.auth.cert.uscc import extract_uscc, parse_order
from idp.config import ConfigError, Settings

MAX_CERTIFICATE_BYTES = 16 * 1024
MAX_SIGNATURE_BYTES = 1024
MAX_PAYLOAD_BYTES = 1024
MAX_ALG_CHARS = 16


@dataclass(frozen=True)
class VerifiedCertificate:
    """The organisation a successful certificate login proves, and the certificate's identity."""

    uscc: str
    org_name: str
    subject: str
    issuer: str
    serial_hex: str
    fingerprint_sha256_hex: str
    not_after: datetime
    key_alg: str


@dataclass(frozen=True)
class SignedLogin:
    """The decoded fields of ``POST /login/cert`` (everything but csrf_token/interaction)."""

    payload: bytes
    signature: bytes
    alg: str
    certificate: bytes
    chain: list[bytes]


def decode_login_form(
    *, payload: str, signature: str, alg: str, certificate: str, chain: str
) -> SignedLogin:
    """Decode the form fields: base64url payload and signature, base64 DER certificate, chain as
    a JSON list of base64 DER. MalformedResponseError for anything else or anything oversized."""
    if not alg or len(alg) > MAX_ALG_CHARS:
        raise MalformedResponseError(detail="alg missing or too long")
    try:
        items = json.loads(chain) if chain.strip() else []
    except ValueError:
        raise MalformedResponseError(detail="chain is not JSON") from None
    if not isinstance(items, list) or len(items) > MAX_CHAIN:
        raise MalformedResponseError(detail="chain is not a short JSON list")
    if not all(isinstance(item, str) for item in items):
        raise MalformedResponseError(detail="chain entries are not strings")
    return SignedLogin(
        payload=b64decode(payload, urlsafe=True, limit=MAX_PAYLOAD_BYTES),
        signature=b64decode(signature, urlsafe=True, limit=MAX_SIGNATURE_BYTES),
        alg=alg,
        certificate=b64decode(certificate, urlsafe=False, limit=MAX_CERTIFICATE_BYTES),
        chain=[b64decode(item, urlsafe=False, limit=MAX_CERTIFICATE_BYTES) for item in items],
    )


def verify_login(
    *,
    payload: bytes,
    signature: bytes,
    alg: str,
    certificate: bytes,
    chain: list[bytes],
    expected_origin: str,
    consume_challenge: Callable[[str], bool],
    settings: Settings,
    now: datetime | None = None,
    store: TrustStore | None = None,
) -> VerifiedCertificate:
    """Run every check of docs/ukey-protocol.md §3, in order, and return the proven identity.

    1. payload canonical and well-formed; 2. ``origin == expected_origin`` (as the browser sends
    it, see :func:`~idp.auth.cert.payload.origin_of`); 3. ``ts`` within ``cert_clock_skew``;
    4. ``cert_sha256`` names ``certificate``; 5. the signature verifies with its key; 6.
    ``consume_challenge(nonce)`` is true (called only now, so a forged request cannot burn a
    challenge); 7. the chain validates against the trust directory (validity, digitalSignature,
    an extended key usage allowing the login, revocation: see :mod:`idp.auth.cert.validate`);
    8. the certificate policies and EKUs the issuing CA's entry in ``uscc-order.json`` requires
    of an organisation certificate (:mod:`idp.auth.cert.issuers`); 9. a USCC with a valid check
    character, from the issuer's sources (default: the extensions only).

    ``store`` defaults to the process's store for ``settings.trust_dir``.
    """
    now = now or datetime.now(UTC)
    login = parse_payload(payload)
    cert = _load_certificate(certificate)
    if len(chain) > MAX_CHAIN or len(signature) > MAX_SIGNATURE_BYTES:
        raise MalformedResponseError(detail="chain or signature too long")
    check_origin(login, expected_origin)
    check_timestamp(login, now=now, skew=settings.cert_clock_skew)
    check_certificate_binding(login, certificate)
    verify_signature(cert, alg, payload, signature)
    if not consume_challenge(login.nonce):
        raise ChallengeError(detail="challenge unknown, expired, foreign or used")
    store = store or trust_store(settings.trust_dir)
    rules = store.rules_for(cert.issuer)
    # Imported here: pyhanko-certvalidator costs every worker ~2.3 MiB, and only UKey logins
    # reach this line (docs/performance.md).
    from idp.auth.cert.validate import validate_chain

    validate_chain(
        certificate, chain, at=now, settings=settings, store=store, issuer_purposes=rules.eku
    )
    check_organisation_certificate(cert, rules)
    uscc = extract_uscc(cert, rules.order(default_uscc_order(settings)))
    if uscc is None:
        raise NoUsccError(detail=f"no valid USCC in {cert.subject.rfc4514_string()}")
    return _verified(cert, certificate, uscc)


def check_configuration(settings: Settings) -> None:
    """Refuse to start with a certificate-login setting that is unusable (ConfigError), rather
    than failing, or reading the USCC from the wrong place, at the first login:
    ``IDP_CERT_USCC_ORDER`` and the trust directory's ``uscc-order.json``."""
    default_uscc_order(settings)
    trust_store(settings.trust_dir).check_rules()


def default_uscc_order(settings: Settings) -> list[str]:
    """``IDP_CERT_USCC_ORDER`` parsed: extensions only; ConfigError names the bad token."""
    try:
        return parse_order(settings.cert_uscc_order, subject_attributes=False)
    except ValueError as error:
        raise ConfigError(f"IDP_CERT_USCC_ORDER: {error}") from None


def describe(cert_der: bytes, *, uscc_order: list[str] | None = None) -> dict[str, str | None]:
    """A certificate for display, in the shape of the agent's ``/status`` ``certificate``:
    subject, issuer, org_name, uscc (None when absent or invalid), serial, not_before,
    not_after (ISO 8601 UTC), key_alg, sha256 (hex); plus its certificate policies and
    extended key usages (dotted OIDs, comma-separated, None when absent), which an operator
    needs to write the issuer's entry in ``uscc-order.json``. Nothing is validated here."""
    cert = _load_certificate(cert_der)
    default = parse_order(Settings.cert_uscc_order, subject_attributes=False)
    order = uscc_order if uscc_order is not None else default
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "org_name": organisation_name(cert),
        "uscc": extract_uscc(cert, order),
        "serial": serial_hex(cert),
        "not_before": _iso(cert.not_valid_before_utc),
        "not_after": _iso(cert.not_valid_after_utc),
        "key_alg": key_description(cert),
        "sha256": hashlib.sha256(cert_der).hexdigest(),
        "policies": ",".join(sorted(certificate_policies(cert))) or None,
        "eku": ",".join(sorted(extended_key_usages(cert))) or None,
    }


def organisation_name(cert: x509.Certificate) -> str:
    """Subject O, else empty. Never CN: in personal and employee certificates it names a
    person, and the name becomes the organisation's when it is registered or bound."""
    for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        if isinstance(attribute.value, str) and attribute.value.strip():
            return attribute.value.strip()
    return ""


def serial_hex(cert: x509.Certificate) -> str:
    """Upper-case hex of the serial number, an even number of digits (as CAs print it)."""
    text = format(cert.serial_number, "X")
    return text.zfill(len(text) + len(text) % 2)


def _verified(cert: x509.Certificate, cert_der: bytes, uscc: str) -> VerifiedCertificate:
    return VerifiedCertificate(
        uscc=uscc,
        org_name=organisation_name(cert),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_hex=serial_hex(cert),
        fingerprint_sha256_hex=hashlib.sha256(cert_der).hexdigest(),
        not_after=cert.not_valid_after_utc,
        key_alg=key_description(cert),
    )


def _load_certificate(der: bytes) -> x509.Certificate:
    if len(der) > MAX_CERTIFICATE_BYTES:
        raise MalformedResponseError(detail="certificate too long")
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise MalformedResponseError(detail="certificate is not DER") from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
