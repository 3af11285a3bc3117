"""The agent's test PKI, an HTTP client that speaks like a browser page, and independent checks of
what the agent returns (signatures verified with ``cryptography`` here, not with agent code)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import Flask
from werkzeug.test import TestResponse

ORIGIN = "https://login.example.cn"
OTHER_ORIGIN = "https://phish.example.com"
PORT = 17443
PIN = "Zq7-pin-4242"
WRONG_PIN = "Wx9-pin-1717"
SO_PIN = "so-8642-pin"
USCC = "91310000MA1K000019"
USCC_OID = x509.ObjectIdentifier("1.2.156.10260.4.1.4")
ORG_NAME = "上海示例物业管理有限公司"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def challenge() -> str:
    """A challenge like the provider's: 32 random bytes, base64url, 43 characters."""
    return secrets.token_urlsafe(32)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- PKI ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A key and the certificate issued for it."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)


def utf8_string(text: str) -> bytes:
    """DER UTF8String (tag 12), the encoding SHECA-style USCC extensions use."""
    data = text.encode()
    return bytes([0x0C, len(data)]) + data


def _name(common_name: str, *, org: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_usage(*, signing: bool, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=signing and not ca,
        key_encipherment=not signing and not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    *,
    subject: x509.Name,
    key: PrivateKey,
    issuer: Issued | None,
    ca: bool = False,
    signing: bool = True,
    extensions: Iterable[x509.ExtensionType] = (),
    days: int = 365,
    not_before: dt.datetime | None = None,
) -> Issued:
    """A certificate for ``key`` signed by ``issuer`` (self-signed when ``None``)."""
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_key_usage(signing=signing, ca=ca), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


def uscc_extension(value: str = USCC) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(USCC_OID, utf8_string(value))


@dataclass(frozen=True)
class Pki:
    """Root → intermediate → leaves, made once per test session."""

    root: Issued
    intermediate: Issued
    rsa: Issued
    ec: Issued
    encryption: Issued
    expired_rsa: Issued

    @property
    def chain(self) -> list[bytes]:
        """The CA certificates a token stores next to its keys (intermediate and root)."""
        return [self.intermediate.der, self.root.der]


def make_pki() -> Pki:
    root = issue(
        subject=_name("UKey Test Root CA"),
        key=ec.generate_private_key(ec.SECP256R1()),
        issuer=None,
        ca=True,
    )
    intermediate = issue(
        subject=_name("UKey Test Issuing CA"),
        key=ec.generate_private_key(ec.SECP256R1()),
        issuer=root,
        ca=True,
    )
    leaf_name = _name(ORG_NAME, org=ORG_NAME)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signing = [uscc_extension()]
    return Pki(
        root=root,
        intermediate=intermediate,
        rsa=issue(subject=leaf_name, key=rsa_key, issuer=intermediate, extensions=signing),
        ec=issue(
            subject=leaf_name,
            key=ec.generate_private_key(ec.SECP256R1()),
            issuer=intermediate,
            extensions=signing,
        ),
        encryption=issue(
            subject=leaf_name,
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            issuer=intermediate,
            signing=False,
        ),
        expired_rsa=issue(
            subject=leaf_name,
            key=rsa_key,
            issuer=intermediate,
            extensions=signing,
            not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=800),
        ),
    )


# --- the page's side of the protocol ----------------------------------------------------------


class AgentClient:
    """Requests as the login page's browser sends them: ``Host: 127.0.0.1:<port>`` and the
    page's ``Origin`` (``origin=None`` leaves the header out)."""

    def __init__(self, app: Flask, *, port: int = PORT) -> None:
        self.app = app
        self.client = app.test_client()
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        *,
        origin: str | None = ORIGIN,
        host: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        sent = dict(headers or {})
        if origin is not None:
            sent["Origin"] = origin
        if host is not None:
            sent["Host"] = host
        return self.client.open(
            path, method=method, base_url=f"http://127.0.0.1:{self.port}", headers=sent, **kwargs
        )

    def status(self, **kwargs: Any) -> TestResponse:
        return self.request("GET", "/status", **kwargs)

    def sign(self, *, body: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.request("POST", "/sign", json=body, **kwargs)

    def preflight(self, path: str = "/sign", **kwargs: Any) -> TestResponse:
        headers = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
            "Access-Control-Request-Private-Network": "true",
        }
        return self.request("OPTIONS", path, headers=headers, **kwargs)


def sign_body(*, nonce: str | None = None, pin: str = PIN, **extra: Any) -> dict[str, Any]:
    return {"challenge": nonce or challenge(), "pin": pin, **extra}


# --- independent checks --------------------------------------------------------------------------


def verify_signature(cert: x509.Certificate, *, alg: str, data: bytes, signature: bytes) -> None:
    """Raise ``InvalidSignature`` unless ``signature`` is ``alg`` over ``data`` (RFC 7518 §3)."""
    key = cert.public_key()
    if alg == "RS256":
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    elif alg == "ES256":
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert len(signature) == 64
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        raise AssertionError(f"unexpected alg {alg}")


def expected_payload(*, cert_der: bytes, nonce: str, origin: str, ts: int) -> bytes:
    """The canonical payload written out by hand, byte for byte as docs/ukey-protocol.md shows."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(cert_der).digest())
    sha = digest.rstrip(b"=").decode()
    return (
        f'{{"cert_sha256":"{sha}","nonce":"{nonce}","origin":"{origin}","ts":{ts},'
        f'"typ":"ukey-login","v":1}}'
    ).encode()


def check_signed(
    body: dict[str, Any], *, issued: Issued, alg: str, nonce: str, origin: str = ORIGIN
) -> dict[str, Any]:
    """Everything a provider would check about a ``POST /sign`` answer, with fresh code."""
    assert body["alg"] == alg
    assert base64.b64decode(body["certificate"]) == issued.der
    payload = b64url_decode(body["payload"])
    fields = json.loads(payload)
    assert abs(fields["ts"] - time.time()) < 60
    assert payload == expected_payload(
        cert_der=issued.der, nonce=nonce, origin=origin, ts=fields["ts"]
    )
    verify_signature(issued.cert, alg=alg, data=payload, signature=b64url_decode(body["signature"]))
    return fields
