"""The demo UKey behind ``make run``: a development CA trusted by the provider, an organisation
certificate with the demo USCC, and a token holding it — a SoftHSM2 token when SoftHSM2 is
installed, otherwise the agent's clearly labelled development-only software token."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

DEMO_PIN = "123456"
DEMO_SO_PIN = "12345678"
USCC_EXTENSION = ObjectIdentifier("1.2.156.10260.4.1.4")  # 统一社会信用代码 (一证通 certificates)


@dataclass(frozen=True)
class DemoToken:
    kind: str  # "softhsm" or "software"
    agent_args: list[str]
    agent_env: dict[str, str]


def _utf8_string(text: str) -> bytes:
    """DER UTF8String, the way CAs encode the USCC extension."""
    data = text.encode()
    return bytes([0x0C, len(data)]) + data


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(*, common_name: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


def _make(directory: Path, *, uscc: str, org_name: str) -> None:
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(common_name="统一认证登录平台 开发用根证书 (DEVELOPMENT ONLY)")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name=org_name, org=org_name))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=730))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(USCC_EXTENSION, _utf8_string(uscc)), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "root.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "org.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "root.key", ca_key)
    _write_key(directory / "org.key", key)


def ensure_demo_pki(instance: Path, trust_dir: Path, *, uscc: str, org_name: str) -> Path:
    """Create the demo CA and organisation certificate once; trust the CA."""
    directory = instance / "demo-pki"
    if not (directory / "org.pem").exists():
        _make(directory, uscc=uscc, org_name=org_name)
    trust_dir.mkdir(parents=True, exist_ok=True)
    (trust_dir / "dev-demo-root.pem").write_bytes((directory / "root.pem").read_bytes())
    return directory


def ensure_demo_token(instance: Path, pki: Path) -> DemoToken:
    """Put the organisation certificate and key on a token the agent can use (idempotent)."""
    saved = instance / "demo-token.json"
    if saved.exists():
        return DemoToken(**json.loads(saved.read_text()))
    cert = x509.load_pem_x509_certificate((pki / "org.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "org.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # noqa: S101  (made by _make above)
    token = _softhsm_token(instance, key, cert) or _software_token(instance, key, cert)
    saved.write_text(json.dumps(token.__dict__))
    return token


def _softhsm_token(
    instance: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> DemoToken | None:
    from clients.ukey_agent.softhsm_token import make_soft_token, softhsm_module

    module = softhsm_module()
    if module is None:
        return None
    conf = make_soft_token(
        instance / "demo-token" / "softhsm",
        label="demo-ukey",
        pin=DEMO_PIN,
        so_pin=DEMO_SO_PIN,
        key=key,
        cert_der=cert.public_bytes(serialization.Encoding.DER),
    )
    return DemoToken(
        kind="softhsm", agent_args=["--module", module], agent_env={"SOFTHSM2_CONF": str(conf)}
    )


def _software_token(
    instance: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> DemoToken:
    from clients.ukey_agent.soft_token import write_soft_token

    directory = write_soft_token(
        instance / "demo-token" / "software", key=key, cert=cert, pin=DEMO_PIN
    )
    return DemoToken(kind="software", agent_args=["--dev-soft-token", str(directory)], agent_env={})
