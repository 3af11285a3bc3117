"""A test PKI for certificate login, made in-process, plus a CRL/OCSP server on 127.0.0.1.

Root CA → intermediate CA → organisation certificates (RSA-2048, EC P-256), each failure
variant the login must refuse, an untrusted CA, and an SM2 root → SM2 leaf built with asn1crypto
and gmalg (``cryptography`` cannot sign SM2). :func:`shared_pki` builds it once per process (so
once per xdist worker), with its :class:`RevocationServer` on an ephemeral port; conftests wrap
it in a session fixture.

:func:`signed_login` produces what the UKey agent returns (docs/ukey-protocol.md §2): canonical
JSON payload and an RS256/PS256/ES256/SM2 signature, written independently of ``idp`` so the
tests cross-check the provider's encoding.
"""

from __future__ import annotations

import atexit
import base64
import functools
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gmalg
from asn1crypto import algos, core
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

USCC = "91310000MA1K000019"
USCC_WRONG_CHECK = "91310000MA1K00001A"  # same 17 characters, wrong check character
OTHER_USCC = "91310115MA1H7GXX3K"
ORG_NAME = "上海示例审计事务所有限公司"
PERSON_NAME = "张三"
USCC_OID = "1.2.156.10260.4.1.4"
SHECA_OID = "1.2.156.1.8888.148"
ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")
# A CA's own arcs: the policies of its organisation and personal certificates, and an EKU of its
# organisation certificates (real CAs publish theirs in their CPS).
ORG_POLICY = "1.3.6.1.4.1.59999.1.1"
PERSONAL_POLICY = "1.3.6.1.4.1.59999.1.2"
ORG_EKU = "1.3.6.1.4.1.59999.3.1"
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
ORIGIN = "https://login.example.cn"

SM2_CURVE = "1.2.156.10197.1.301"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM2_USER_ID = b"1234567812345678"

DAY = timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def der_string(text: str, tag: int = 0x0C) -> bytes:
    """A DER string (UTF8String by default) of a short text."""
    codec = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x1E: "utf-16-be"}[tag]
    body = text.encode(codec)
    assert len(body) < 128
    return bytes([tag, len(body)]) + body


# --- RSA / EC authorities (cryptography) --------------------------------------------------------


@dataclass
class Leaf:
    """An organisation certificate with its private key and the CA certificates to send."""

    name: str
    cert: x509.Certificate
    key: Any  # cryptography private key, or Sm2Key
    chain: list[bytes]
    alg: str

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


@dataclass
class CertificateAuthority:
    """A CA made with ``cryptography``; serves its CRL and answers OCSP for what it issued."""

    name: str
    key: Any
    cert: x509.Certificate
    parent: CertificateAuthority | None = None
    issued: dict[int, x509.Certificate] = field(default_factory=dict)
    revoked: dict[int, datetime] = field(default_factory=dict)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain(self) -> list[bytes]:
        """CA certificates below the root, this one first (what an agent sends)."""
        if self.parent is None:
            return []
        return [self.der, *self.parent.chain]

    def revoke(self, cert: x509.Certificate, when: datetime | None = None) -> None:
        self.revoked[cert.serial_number] = when or utcnow() - timedelta(hours=1)

    def crl_der(self) -> bytes:
        now = utcnow()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + DAY)
            .add_extension(x509.CRLNumber(int(time.time())), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        for serial, when in self.revoked.items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when)
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def ocsp_response_der(self, request_der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(request_der)
        cert = self.issued.get(request.serial_number)
        if cert is None:
            return (
                ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
            ).public_bytes(serialization.Encoding.DER)
        now = utcnow()
        revoked_at = self.revoked.get(cert.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=self.cert,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=5),
            next_update=now + timedelta(hours=1),
            revocation_time=revoked_at,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked_at else None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.cert)
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        response = builder.sign(self.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "UKey Test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_root(name: str, key: Any) -> CertificateAuthority:
    now = utcnow()
    subject = ca_name(f"Test {name} CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 30 * DAY)
        .not_valid_after(now + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(name=name, key=key, cert=cert)


def make_intermediate(
    parent: CertificateAuthority, name: str, key: Any, *, base_url: str
) -> CertificateAuthority:
    now = utcnow()
    builder = (
        _issued_by(parent, key.public_key())
        .subject_name(ca_name(f"Test {name} CA"))
        .not_valid_before(now - 30 * DAY)
        .not_valid_after(now + 1825 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(_crl_dp(f"{base_url}/crl/{parent.name}.crl"), critical=False)
    )
    cert = builder.sign(parent.key, hashes.SHA256())
    parent.issued[cert.serial_number] = cert
    return CertificateAuthority(name=name, key=key, cert=cert, parent=parent)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def leaf_key_usage(*, signing: bool = True) -> x509.KeyUsage:
    """digitalSignature + nonRepudiation (signing cert), or keyEncipherment only (encryption)."""
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing,
        key_encipherment=not signing,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _ocsp_aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
        ]
    )


def _issued_by(issuer: CertificateAuthority, public_key: Any) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )


def org_subject(
    *, common_name: str = ORG_NAME, extra: list[x509.NameAttribute] | None = None
) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG_NAME),
            *(extra or []),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def personal_subject(common_name: str) -> x509.Name:
    """A personal certificate's subject: no organisation, the person in CN (where CAs often add
    an ID or the employer's code)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def uscc_extension(value: bytes, oid: str = USCC_OID) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(ObjectIdentifier(oid), value)


def policies(*oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(ObjectIdentifier(o), None) for o in oids]
    )


def key_purposes(*oids: str) -> x509.ExtendedKeyUsage:
    return x509.ExtendedKeyUsage([ObjectIdentifier(oid) for oid in oids])


def issue_leaf(
    issuer: CertificateAuthority,
    name: str,
    *,
    key: Any = None,
    subject: x509.Name | None = None,
    extensions: list[x509.ExtensionType] | None = None,
    key_usage: x509.KeyUsage | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    crl_url: str | None = None,
    ocsp_url: str | None = None,
) -> Leaf:
    """An organisation certificate from ``issuer``; by default EC P-256, USCC in the extension
    (DER UTF8String), signing key usage, valid from yesterday for a year."""
    key = key or ec_key()
    now = utcnow()
    if extensions is None:
        extensions = [uscc_extension(der_string(USCC))]
    builder = (
        _issued_by(issuer, key.public_key())
        .subject_name(subject or org_subject())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage or leaf_key_usage(), critical=True)
    )
    if crl_url:
        builder = builder.add_extension(_crl_dp(crl_url), critical=False)
    if ocsp_url:
        builder = builder.add_extension(_ocsp_aia(ocsp_url), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    issuer.issued[cert.serial_number] = cert
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    return Leaf(name=name, cert=cert, key=key, chain=issuer.chain, alg=alg)


# --- SM2 (asn1crypto + gmalg) -------------------------------------------------------------------


@dataclass(frozen=True)
class Sm2Key:
    """An SM2 key pair as gmalg uses it: secret scalar bytes and the point ``04 || X || Y``."""

    secret: bytes
    public: bytes

    @classmethod
    def generate(cls) -> Sm2Key:
        secret, public = gmalg.SM2().generate_keypair()
        return cls(secret=secret, public=public)

    def sign(self, message: bytes) -> tuple[int, int]:
        r, s = gmalg.SM2(sk=self.secret, uid=SM2_USER_ID, pk=self.public).sign(message)
        return int.from_bytes(r, "big"), int.from_bytes(s, "big")

    def sign_der(self, message: bytes) -> bytes:
        r, s = self.sign(message)
        return algos.DSASignature({"r": r, "s": s}).dump()

    def spki(self) -> asn1_keys.PublicKeyInfo:
        return asn1_keys.PublicKeyInfo(
            {
                "algorithm": {
                    "algorithm": "ec",
                    "parameters": asn1_keys.ECDomainParameters(name="named", value=SM2_CURVE),
                },
                "public_key": self.public,
            }
        )

    def key_id(self) -> bytes:
        return hashlib.sha1(self.public).digest()  # noqa: S324 - RFC 5280 key identifier

    def pkcs8_der(self) -> bytes:
        """PKCS#8 for ``openssl pkey``; built by hand because asn1crypto has no SM2 key size."""

        class EcPrivateKey(core.Sequence):
            _fields = [  # noqa: RUF012 - asn1crypto's declaration style
                ("version", core.Integer),
                ("private_key", core.OctetString),
                ("parameters", core.ObjectIdentifier, {"explicit": 0}),
                ("public_key", core.OctetBitString, {"explicit": 1}),
            ]

        class Algorithm(core.Sequence):
            _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.ObjectIdentifier)]  # noqa: RUF012

        class PrivateKeyInfo(core.Sequence):
            _fields = [  # noqa: RUF012
                ("version", core.Integer),
                ("algorithm", Algorithm),
                ("private_key", core.OctetString),
            ]

        inner = EcPrivateKey(
            {
                "version": 1,
                "private_key": self.secret.rjust(32, b"\0"),
                "parameters": SM2_CURVE,
                "public_key": self.public,
            }
        ).dump()
        return PrivateKeyInfo(
            {
                "version": 0,
                "algorithm": {"algorithm": "1.2.840.10045.2.1", "parameters": SM2_CURVE},
                "private_key": inner,
            }
        ).dump()


def _asn1_time(moment: datetime) -> asn1_x509.Time:
    return asn1_x509.Time({"utc_time": moment})


class Sm2Authority:
    """A self-signed SM2 root that issues SM2 leaves and an SM2-signed CRL."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = Sm2Key.generate()
        self.subject = asn1_x509.Name.build(
            {
                "country_name": "CN",
                "organization_name": "UKey Test PKI",
                "common_name": f"Test {name} CA",
            }
        )
        self.revoked: dict[int, datetime] = {}
        now = utcnow()
        self.asn1_cert = self._sign_certificate(
            subject=self.subject,
            key=self.key,
            serial=x509.random_serial_number(),
            not_before=now - 30 * DAY,
            not_after=now + 3650 * DAY,
            extensions=[
                {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": True}},
                {
                    "extn_id": "key_usage",
                    "critical": True,
                    "extn_value": {"digital_signature", "key_cert_sign", "crl_sign"},
                },
            ],
        )
        self.cert = x509.load_der_x509_certificate(self.asn1_cert.dump())

    @property
    def der(self) -> bytes:
        return self.asn1_cert.dump()

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_leaf(self, name: str, *, crl_url: str | None, uscc: str = USCC) -> Leaf:
        key = Sm2Key.generate()
        now = utcnow()
        subject = asn1_x509.Name.build(
            {"country_name": "CN", "organization_name": ORG_NAME, "common_name": ORG_NAME}
        )
        extensions: list[dict[str, Any]] = [
            {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": False}},
            {
                "extn_id": "key_usage",
                "critical": True,
                "extn_value": {"digital_signature", "non_repudiation"},
            },
            {"extn_id": USCC_OID, "critical": False, "extn_value": der_string(uscc)},
        ]
        if crl_url:
            extensions.append(
                {
                    "extn_id": "crl_distribution_points",
                    "critical": False,
                    "extn_value": [
                        {
                            "distribution_point": {
                                "full_name": [
                                    asn1_x509.GeneralName(
                                        name="uniform_resource_identifier", value=crl_url
                                    )
                                ]
                            }
                        }
                    ],
                }
            )
        cert = self._sign_certificate(
            subject=subject,
            key=key,
            serial=x509.random_serial_number(),
            not_before=now - DAY,
            not_after=now + 365 * DAY,
            extensions=extensions,
        )
        return Leaf(
            name=name,
            cert=x509.load_der_x509_certificate(cert.dump()),
            key=key,
            chain=[],
            alg="SM2",
        )

    def _sign_certificate(
        self,
        *,
        subject: asn1_x509.Name,
        key: Sm2Key,
        serial: int,
        not_before: datetime,
        not_after: datetime,
        extensions: list[dict[str, Any]],
    ) -> asn1_x509.Certificate:
        identifiers = [
            {"extn_id": "key_identifier", "critical": False, "extn_value": key.key_id()},
            {
                "extn_id": "authority_key_identifier",
                "critical": False,
                "extn_value": {"key_identifier": self.key.key_id()},
            },
        ]
        tbs = asn1_x509.TbsCertificate(
            {
                "version": "v3",
                "serial_number": serial,
                "signature": {"algorithm": SM2_WITH_SM3},
                "issuer": self.subject,
                "validity": {
                    "not_before": _asn1_time(not_before),
                    "not_after": _asn1_time(not_after),
                },
                "subject": subject,
                "subject_public_key_info": key.spki(),
                "extensions": [*extensions, *identifiers],
            }
        )
        return asn1_x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": {"algorithm": SM2_WITH_SM3},
                "signature_value": self.key.sign_der(tbs.dump()),
            }
        )

    def revoke(self, cert: x509.Certificate) -> None:
        self.revoked[cert.serial_number] = utcnow() - timedelta(hours=1)

    def crl_der(self) -> bytes:
        now = utcnow()
        tbs: dict[str, Any] = {
            "version": "v2",
            "signature": {"algorithm": SM2_WITH_SM3},
            "issuer": self.subject,
            "this_update": _asn1_time(now - timedelta(minutes=5)),
            "next_update": _asn1_time(now + DAY),
            "crl_extensions": [
                {"extn_id": "crl_number", "critical": False, "extn_value": int(time.time())},
                {
                    "extn_id": "authority_key_identifier",
                    "critical": False,
                    "extn_value": {"key_identifier": self.key.key_id()},
                },
            ],
        }
        if self.revoked:
            tbs["revoked_certificates"] = [
                {"user_certificate": serial, "revocation_date": _asn1_time(when)}
                for serial, when in self.revoked.items()
            ]
        tbs_list = asn1_crl.TbsCertList(tbs)
        return asn1_crl.CertificateList(
            {
                "tbs_cert_list": tbs_list,
                "signature_algorithm": {"algorithm": SM2_WITH_SM3},
                "signature": self.key.sign_der(tbs_list.dump()),
            }
        ).dump()

    def ocsp_response_der(self, request_der: bytes) -> bytes:
        raise LookupError("the SM2 test CA has no OCSP responder")


# --- the CRL / OCSP server ----------------------------------------------------------------------


class RevocationServer:
    """CRLs at ``GET /crl/<ca>.crl`` and OCSP at ``POST /ocsp/<ca>``, on 127.0.0.1, in a thread.

    ``requests`` counts hits per path; :meth:`outage` makes every answer a 503.
    """

    def __init__(self) -> None:
        self.authorities: dict[str, Any] = {}
        self.requests: dict[str, int] = {}
        self.down = False
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def crl_url(self, ca: str) -> str:
        return f"{self.base_url}/crl/{ca}.crl"

    def ocsp_url(self, ca: str) -> str:
        return f"{self.base_url}/ocsp/{ca}"

    def hits(self, path_prefix: str) -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if path.startswith(path_prefix))

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.down = True
        try:
            yield
        finally:
            self.down = False

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        self._count(path)
        if self.down:
            return 503, "text/plain", b"down"
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 2 and parts[0] == "crl" and parts[1].endswith(".crl"):
            ca = self.authorities.get(parts[1][: -len(".crl")])
            if ca is not None:
                return 200, "application/pkix-crl", ca.crl_der()
        if method == "POST" and len(parts) == 2 and parts[0] == "ocsp":
            ca = self.authorities.get(parts[1])
            if ca is not None:
                return 200, "application/ocsp-response", ca.ocsp_response_der(body)
        return 404, "text/plain", b"not found"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(*server._answer("GET", self.path, b""))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._reply(*server._answer("POST", self.path, self.rfile.read(length)))

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/crl/nowhere.crl"


# --- the whole PKI ------------------------------------------------------------------------------


@dataclass
class TestPki:
    """Every authority and leaf the certificate-login tests use."""

    __test__ = False  # not a pytest test class

    server: RevocationServer
    root: CertificateAuthority
    intermediate: CertificateAuthority
    revoked_intermediate: CertificateAuthority
    untrusted_root: CertificateAuthority
    sm2_root: Sm2Authority
    leaves: dict[str, Leaf]

    def __getitem__(self, name: str) -> Leaf:
        return self.leaves[name]

    def write_trust_dir(
        self,
        directory: Path,
        *,
        crl_files: bool = False,
        sm2: bool = True,
        rules: dict[str, object] | None = None,
    ) -> Path:
        """The trust directory: the root PEM (and the SM2 root), optionally the current CRLs of
        the CAs as ``*.crl`` files and a ``uscc-order.json`` of issuer entries."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "test-root.pem").write_bytes(self.root.pem)
        if sm2:
            (directory / "test-sm2-root.pem").write_bytes(self.sm2_root.pem)
        if crl_files:
            (directory / "test-intermediate.crl").write_bytes(self.intermediate.crl_der())
            (directory / "test-root.crl").write_bytes(self.root.crl_der())
            if sm2:
                (directory / "test-sm2-root.crl").write_bytes(self.sm2_root.crl_der())
        if rules is not None:
            (directory / "uscc-order.json").write_text(json.dumps(rules, ensure_ascii=False))
        return directory

    def close(self) -> None:
        self.server.close()


def build_pki() -> TestPki:
    """Make every key, CA and certificate (about half a second, mostly RSA key generation)."""
    server = RevocationServer()
    root = make_root("root", rsa_key())
    intermediate = make_intermediate(root, "intermediate", rsa_key(), base_url=server.base_url)
    revoked_intermediate = make_intermediate(
        root, "revoked-intermediate", ec_key(), base_url=server.base_url
    )
    root.revoke(revoked_intermediate.cert)
    untrusted_root = make_root("untrusted", ec_key())
    sm2_root = Sm2Authority("sm2-root")
    for ca in (root, intermediate, revoked_intermediate, untrusted_root, sm2_root):
        server.authorities[ca.name] = ca
    leaves = _leaves(server, intermediate, revoked_intermediate, untrusted_root, sm2_root)
    return TestPki(
        server=server,
        root=root,
        intermediate=intermediate,
        revoked_intermediate=revoked_intermediate,
        untrusted_root=untrusted_root,
        sm2_root=sm2_root,
        leaves=leaves,
    )


def _leaves(
    server: RevocationServer,
    intermediate: CertificateAuthority,
    revoked_intermediate: CertificateAuthority,
    untrusted_root: CertificateAuthority,
    sm2_root: Sm2Authority,
) -> dict[str, Leaf]:
    now = utcnow()
    crl = server.crl_url(intermediate.name)
    ocsp_url = server.ocsp_url(intermediate.name)

    def leaf(name: str, **options: Any) -> Leaf:
        options.setdefault("crl_url", crl)
        options.setdefault("ocsp_url", ocsp_url)
        return issue_leaf(options.pop("issuer", intermediate), name, **options)

    def subject_with(oid: ObjectIdentifier, value: str) -> x509.Name:
        return org_subject(extra=[x509.NameAttribute(oid, value)])

    organisation_code = uscc_extension(der_string(USCC))

    items = [
        leaf("good_rsa", key=rsa_key()),
        leaf("good_ec"),
        leaf("expired", not_before=now - 400 * DAY, not_after=now - DAY),
        leaf("not_yet_valid", not_before=now + DAY, not_after=now + 400 * DAY),
        leaf("revoked"),
        leaf("untrusted", issuer=untrusted_root, crl_url=None, ocsp_url=None),
        leaf("no_digital_signature", key_usage=leaf_key_usage(signing=False)),
        leaf("no_uscc", extensions=[]),
        leaf("wrong_check", extensions=[uscc_extension(der_string(USCC_WRONG_CHECK))]),
        leaf("uscc_serial", extensions=[], subject=subject_with(NameOID.SERIAL_NUMBER, USCC)),
        leaf(
            "uscc_ou", extensions=[], subject=subject_with(NameOID.ORGANIZATIONAL_UNIT_NAME, USCC)
        ),
        leaf(
            "uscc_orgid",
            extensions=[],
            subject=subject_with(ORGANIZATION_IDENTIFIER, f"NTRCN-{USCC}"),
        ),
        leaf("uscc_cn", extensions=[], subject=org_subject(common_name=f"{ORG_NAME}（{USCC}）")),
        leaf("personal_cn", extensions=[], subject=personal_subject(f"{PERSON_NAME}（{USCC}）")),
        leaf("no_org_name", subject=personal_subject(PERSON_NAME)),
        # An employee's certificate: the organisation's code in the extension, a personal policy.
        leaf(
            "employee",
            subject=org_subject(common_name=PERSON_NAME),
            extensions=[organisation_code, policies(PERSONAL_POLICY), key_purposes(CLIENT_AUTH)],
        ),
        leaf(
            "org_policy",
            extensions=[organisation_code, policies(ORG_POLICY), key_purposes(CLIENT_AUTH)],
        ),
        leaf("org_eku", extensions=[organisation_code, key_purposes(CLIENT_AUTH, ORG_EKU)]),
        # A TLS server certificate of the same CA, with the organisation's code.
        leaf("server_auth", extensions=[organisation_code, key_purposes(SERVER_AUTH)]),
        leaf("ocsp_only", crl_url=None),
        leaf("ocsp_revoked", crl_url=None),
        leaf("no_revocation_info", crl_url=None, ocsp_url=None),
        leaf("dead_crl_dp", crl_url=closed_port_url(), ocsp_url=None),
        leaf(
            "under_revoked_ca",
            issuer=revoked_intermediate,
            crl_url=server.crl_url(revoked_intermediate.name),
            ocsp_url=None,
        ),
        sm2_root.issue_leaf("good_sm2", crl_url=server.crl_url(sm2_root.name)),
        sm2_root.issue_leaf("revoked_sm2", crl_url=server.crl_url(sm2_root.name)),
    ]
    leaves = {item.name: item for item in items}
    intermediate.revoke(leaves["revoked"].cert)
    intermediate.revoke(leaves["ocsp_revoked"].cert)
    sm2_root.revoke(leaves["revoked_sm2"].cert)
    return leaves


@functools.cache
def shared_pki() -> TestPki:
    """The PKI of this process (one per xdist worker); its server stops at exit."""
    pki = build_pki()
    atexit.register(pki.close)
    return pki


# --- what the agent returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class SignedResponse:
    """The agent's ``POST /sign`` answer, decoded."""

    payload: bytes
    signature: bytes
    alg: str
    certificate: bytes
    chain: list[bytes]

    def login_kwargs(self) -> dict[str, Any]:
        """The arguments of ``verify_login`` this response fills."""
        return {
            "payload": self.payload,
            "signature": self.signature,
            "alg": self.alg,
            "certificate": self.certificate,
            "chain": list(self.chain),
        }

    def form(self) -> dict[str, str]:
        """The ``POST /login/cert`` fields the page sends (base64url, base64, JSON list)."""
        return {
            "payload": b64url(self.payload),
            "signature": b64url(self.signature),
            "alg": self.alg,
            "certificate": base64.b64encode(self.certificate).decode(),
            "chain": json.dumps([base64.b64encode(der).decode() for der in self.chain]),
        }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def login_payload(*, cert_der: bytes, nonce: str, origin: str, ts: int) -> bytes:
    """The canonical payload of docs/ukey-protocol.md §2: sorted keys, no whitespace, UTF-8."""
    body = {
        "cert_sha256": b64url(hashlib.sha256(cert_der).digest()),
        "nonce": nonce,
        "origin": origin,
        "ts": ts,
        "typ": "ukey-login",
        "v": 1,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_payload(key: Any, alg: str, data: bytes) -> bytes:
    """Sign like a token: RS256, PS256 (salt 32), ES256 and SM2 as raw ``r || s``."""
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return key.sign(
            data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
        )
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "SM2":
        r, s = key.sign(data)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(alg)


def signed_login(
    leaf: Leaf,
    *,
    nonce: str,
    origin: str = ORIGIN,
    ts: int | None = None,
    alg: str | None = None,
    key: Any = None,
    cert_der: bytes | None = None,
) -> SignedResponse:
    """What the agent answers for ``leaf``; ``key``/``cert_der`` substitute a signing key or the
    certificate named in the payload, to build forgeries."""
    alg = alg or leaf.alg
    payload = login_payload(
        cert_der=cert_der or leaf.der,
        nonce=nonce,
        origin=origin,
        ts=int(time.time()) if ts is None else ts,
    )
    return SignedResponse(
        payload=payload,
        signature=sign_payload(key or leaf.key, alg, payload),
        alg=alg,
        certificate=leaf.der,
        chain=list(leaf.chain),
    )
