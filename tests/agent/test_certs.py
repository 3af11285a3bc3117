"""Certificate reading: USCC locations and encodings in the provider's default order (extensions
only), signing-certificate choice, key names."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clients.ukey_agent.certs import extract_uscc, is_signing_certificate, is_valid_uscc, key_alg
from clients.ukey_agent.der import decode_text
from tests.agent.helpers import USCC, issue, utf8_string

OTHER_USCC = "91110108551385082Q"
SHECA_OID = x509.ObjectIdentifier("1.2.156.1.8888.148")
YZT_OID = x509.ObjectIdentifier("1.2.156.10260.4.1.4")
ORG_ID = x509.ObjectIdentifier("2.5.4.97")


@pytest.fixture(scope="module")
def key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(key, *, subject=(), extensions=(), signing=True):
    name = x509.Name(
        [x509.NameAttribute(oid, value) for oid, value in subject]
        or [x509.NameAttribute(NameOID.COMMON_NAME, "组织")]
    )
    return issue(subject=name, key=key, issuer=None, extensions=extensions, signing=signing).cert


def _ext(oid, value: bytes):
    return x509.UnrecognizedExtension(oid, value)


@pytest.mark.parametrize("code", [USCC, OTHER_USCC, "91350100M000100Y43"])
def test_valid_codes(code):
    assert is_valid_uscc(code)


@pytest.mark.parametrize(
    "code", ["91310000MA1K000018", "91310000MA1K00001", "91310000ma1k000019", "I1310000MA1K000019"]
)
def test_invalid_codes(code):
    assert not is_valid_uscc(code)


@pytest.mark.parametrize(
    "value",
    [
        utf8_string(USCC),
        bytes([0x13, 18]) + USCC.encode(),  # PrintableString
        bytes([0x16, 18]) + USCC.encode(),  # IA5String
        bytes([0x1E, 36]) + USCC.encode("utf-16-be"),  # BMPString
        bytes([0x04, 20, 0x0C, 18]) + USCC.encode(),  # OCTET STRING around a UTF8String
        USCC.encode(),  # raw text
    ],
)
def test_extension_encodings(key, value):
    cert = _cert(key, extensions=[_ext(YZT_OID, value)])

    assert extract_uscc(cert) == USCC


def test_order_extension_before_sheca_extension(key):
    both = _cert(
        key,
        subject=[(NameOID.SERIAL_NUMBER, "91350100M000100Y43")],
        extensions=[_ext(YZT_OID, utf8_string(USCC)), _ext(SHECA_OID, utf8_string(OTHER_USCC))],
    )
    sheca = _cert(
        key,
        subject=[(NameOID.SERIAL_NUMBER, "91350100M000100Y43")],
        extensions=[_ext(SHECA_OID, utf8_string(OTHER_USCC))],
    )

    assert extract_uscc(both) == USCC
    assert extract_uscc(sheca) == OTHER_USCC


@pytest.mark.parametrize(
    "subject",
    [
        [(NameOID.SERIAL_NUMBER, USCC)],
        [(ORG_ID, "NTRCN-" + USCC)],
        [(NameOID.ORGANIZATIONAL_UNIT_NAME, "财务部"), (NameOID.ORGANIZATIONAL_UNIT_NAME, USCC)],
        [(NameOID.COMMON_NAME, USCC)],
        [(NameOID.COMMON_NAME, f"张三（{USCC}）")],
    ],
)
def test_the_subject_is_never_read(key, subject):
    """As the provider by default: personal certificates carry the code in the subject too."""
    assert extract_uscc(_cert(key, subject=subject)) is None


def test_invalid_check_character_falls_through_to_the_next_extension(key):
    cert = _cert(
        key,
        subject=[(NameOID.COMMON_NAME, USCC)],
        extensions=[
            _ext(YZT_OID, utf8_string("91310000MA1K000018")),
            _ext(SHECA_OID, utf8_string(OTHER_USCC)),
        ],
    )

    assert extract_uscc(cert) == OTHER_USCC


def test_an_invalid_extension_value_never_falls_back_to_the_subject(key):
    cert = _cert(
        key,
        subject=[(NameOID.COMMON_NAME, USCC)],
        extensions=[_ext(YZT_OID, utf8_string("91310000MA1K000018"))],
    )

    assert extract_uscc(cert) is None


def test_no_code(key):
    assert extract_uscc(_cert(key, subject=[(NameOID.COMMON_NAME, "上海示例")])) is None


def test_signing_certificate_needs_digital_signature(key):
    assert is_signing_certificate(_cert(key))
    assert not is_signing_certificate(_cert(key, signing=False))
    ca = issue(
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]),
        key=key,
        issuer=None,
        ca=True,
    )
    assert not is_signing_certificate(ca.cert)
    assert key_alg(ca.cert) == "EC-P256"


def test_decode_text_rejects_binary():
    assert decode_text(b"\xff\xfe\x00") is None
