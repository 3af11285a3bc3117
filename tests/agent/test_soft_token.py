"""The development-only software token behind the same ``TokenSigner`` interface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from clients.ukey_agent.errors import AgentError
from clients.ukey_agent.soft_token import SoftTokenSigner, write_soft_token


@pytest.fixture
def token_dir(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "上海示例审计事务所有限公司")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return write_soft_token(tmp_path / "token", key=key, cert=cert, pin="123456"), cert


def test_soft_token_signs_with_the_pin_and_says_what_it_is(token_dir):
    directory, cert = token_dir
    signer = SoftTokenSigner(directory)
    assert [t.label for t in signer.tokens()] == ["DEV SOFTWARE TOKEN"]
    assert oct((directory / "key.pem").stat().st_mode & 0o777) == "0o600"
    signed = signer.sign(token=None, pin="123456", build_payload=lambda der: b"payload")
    assert signed.alg == "ES256"
    r, s = (
        int.from_bytes(signed.signature[:32], "big"),
        int.from_bytes(signed.signature[32:], "big"),
    )
    cert.public_key().verify(encode_dss_signature(r, s), b"payload", ec.ECDSA(hashes.SHA256()))


def test_soft_token_refuses_a_wrong_pin(token_dir):
    directory, _cert = token_dir
    with pytest.raises(AgentError) as caught:
        SoftTokenSigner(directory).sign(token=None, pin="000000", build_payload=lambda der: b"x")
    assert caught.value.code == "wrong_pin"


def test_missing_soft_token_is_no_token(tmp_path):
    signer = SoftTokenSigner(tmp_path / "absent")
    assert signer.tokens() == []
    with pytest.raises(AgentError) as caught:
        signer.signing_certificate(token=None)
    assert caught.value.code == "no_token"
