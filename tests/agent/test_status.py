"""``GET /status`` with no, one and several tokens (docs/ukey-protocol.md §2)."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.agent.helpers import ORG_NAME, USCC, issue


def test_no_token(tokens, agent):
    # the SoftHSM2 directory holds no initialised token: no UKey plugged in
    response = agent().status()

    assert response.status_code == 200
    assert response.json == {
        "agent": "ukey-agent",
        "version": 1,
        "tokens": [],
        "certificate": None,
    }


def test_one_token_describes_the_signing_certificate(rsa_token, pki, agent):
    response = agent().status()

    assert response.status_code == 200
    body = response.json
    assert [t["label"] for t in body["tokens"]] == ["ukey-1"]
    token = body["tokens"][0]
    assert set(token) == {"label", "serial", "manufacturer", "model"}
    assert token["serial"] and token["manufacturer"] == "SoftHSM project"
    cert = pki.rsa.cert
    assert body["certificate"] == {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "org_name": ORG_NAME,
        "uscc": USCC,
        "serial": format(cert.serial_number, "X"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key_alg": "RSA-2048",
        "sha256": hashlib.sha256(pki.rsa.der).hexdigest(),
    }
    assert "error" not in body


def test_ec_token(tokens, pki, agent):
    tokens.add(pki.ec)

    certificate = agent().status().json["certificate"]

    assert certificate["key_alg"] == "EC-P256"
    assert certificate["uscc"] == USCC


def test_encryption_certificate_is_not_described(tokens, pki, agent):
    tokens.add(pki.encryption, extra_keys=[pki.ec])

    certificate = agent().status().json["certificate"]

    assert certificate["sha256"] == hashlib.sha256(pki.ec.der).hexdigest()


def test_two_tokens(tokens, pki, agent):
    tokens.add(pki.rsa, label="ukey-rsa")
    tokens.add(pki.ec, label="ukey-ec")

    body = agent().status().json

    assert sorted(t["label"] for t in body["tokens"]) == ["ukey-ec", "ukey-rsa"]
    assert len({t["serial"] for t in body["tokens"]}) == 2
    assert body["certificate"] is None
    assert body["error"] == "several_tokens"


def test_token_without_signing_certificate(tokens, pki, agent):
    tokens.add(pki.encryption)

    body = agent().status().json

    assert len(body["tokens"]) == 1
    assert body["certificate"] is None
    assert body["error"] == "no_signing_certificate"


def test_an_employee_certificate_shows_no_organisation_code(tokens, pki, agent):
    """The employer's code in the subject is no sign of an organisation certificate: the page
    shows "-" for it (and the person's subject for the organisation)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, USCC),
            x509.NameAttribute(NameOID.COMMON_NAME, "张三"),
        ]
    )
    personal = issue(
        subject=subject, key=ec.generate_private_key(ec.SECP256R1()), issuer=pki.intermediate
    )
    tokens.add(personal)

    certificate = agent().status().json["certificate"]

    assert certificate["subject"] == subject.rfc4514_string()
    assert certificate["uscc"] is None
    assert certificate["org_name"] is None
