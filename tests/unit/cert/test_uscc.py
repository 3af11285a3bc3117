"""Reading the USCC from certificates: every placement, encodings, order, and codes whose
GB 32100 check character is wrong."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from idp.auth.cert.uscc import (
    extension_texts,
    extract_uscc,
    parse_order,
)
from idp.config import Settings
from tests.pki import (
    ORG_NAME,
    ORGANIZATION_IDENTIFIER,
    OTHER_USCC,
    SHECA_OID,
    USCC,
    USCC_OID,
    USCC_WRONG_CHECK,
    der_string,
    issue_leaf,
    org_subject,
    uscc_extension,
)

DEFAULT = parse_order(Settings.cert_uscc_order, subject_attributes=False)
EVERY_SOURCE = [*DEFAULT, "serialNumber", "organizationIdentifier", "OU", "CN"]


def make_cert(pki, *, extensions=(), subject=None) -> x509.Certificate:
    return issue_leaf(pki.intermediate, "adhoc", extensions=list(extensions), subject=subject).cert


def subject_with(oid, value) -> x509.Name:
    return org_subject(extra=[x509.NameAttribute(oid, value)])


# --- the order setting --------------------------------------------------------------------------


def test_default_order_is_the_organisation_certificate_extensions_only():
    assert DEFAULT == ["ext:1.2.156.10260.4.1.4", "ext:1.2.156.1.8888.148"]


def test_order_accepts_lists_and_spaces():
    assert parse_order(" ext:1.2.3 , CN ,", subject_attributes=True) == ["ext:1.2.3", "CN"]
    assert parse_order(["OU", "serialNumber"], subject_attributes=True) == ["OU", "serialNumber"]


@pytest.mark.parametrize(
    "text", ["CN,O", "ext:", "ext:1.2.x", "ext:01.2", "ext:1.45", "ext:3.1", "cn", "subject"]
)
def test_unknown_sources_are_refused(text):
    with pytest.raises(ValueError, match="unknown USCC source"):
        parse_order(text, subject_attributes=True)


@pytest.mark.parametrize("source", ["serialNumber", "organizationIdentifier", "OU", "CN"])
def test_subject_attributes_are_refused_outside_an_issuers_order(source):
    with pytest.raises(ValueError, match=f"subject attribute '{source}'.*uscc-order.json"):
        parse_order(f"ext:1.2.156.10260.4.1.4,{source}", subject_attributes=False)


@pytest.mark.parametrize("text", ["", " , ", []])
def test_an_order_without_sources_is_refused(text):
    with pytest.raises(ValueError, match="no USCC source"):
        parse_order(text, subject_attributes=True)


# --- placements of the test PKI -----------------------------------------------------------------


@pytest.mark.parametrize("leaf", ["good_rsa", "good_ec", "good_sm2"])
def test_the_default_order_finds_the_extension(pki, leaf):
    assert extract_uscc(pki[leaf].cert, DEFAULT) == USCC


@pytest.mark.parametrize("leaf", ["uscc_serial", "uscc_ou", "uscc_orgid", "uscc_cn", "personal_cn"])
def test_the_default_order_reads_no_subject_attribute(pki, leaf):
    """A code in the subject is what personal and employee certificates carry too."""
    assert extract_uscc(pki[leaf].cert, DEFAULT) is None


@pytest.mark.parametrize("leaf", ["uscc_serial", "uscc_ou", "uscc_orgid", "uscc_cn"])
def test_every_subject_placement_is_found_where_an_order_names_it(pki, leaf):
    assert extract_uscc(pki[leaf].cert, EVERY_SOURCE) == USCC


@pytest.mark.parametrize("leaf", ["no_uscc", "wrong_check"])
def test_missing_or_wrong_check_character_gives_none(pki, leaf):
    assert extract_uscc(pki[leaf].cert, EVERY_SOURCE) is None


def test_wrong_check_character_is_really_only_the_last_character():
    assert USCC_WRONG_CHECK[:17] == USCC[:17]
    assert USCC_WRONG_CHECK != USCC


def test_sources_outside_the_order_are_not_read(pki):
    assert extract_uscc(pki["uscc_serial"].cert, ["ext:1.2.156.10260.4.1.4", "CN"]) is None
    assert extract_uscc(pki["good_ec"].cert, ["serialNumber", "OU"]) is None


def test_the_first_source_in_order_wins(pki):
    cert = make_cert(
        pki,
        extensions=[uscc_extension(der_string(OTHER_USCC))],
        subject=subject_with(NameOID.SERIAL_NUMBER, USCC),
    )
    assert extract_uscc(cert, DEFAULT) == OTHER_USCC
    assert extract_uscc(cert, ["serialNumber", "ext:1.2.156.10260.4.1.4"]) == USCC


def test_an_invalid_value_falls_through_to_the_next_source(pki):
    cert = make_cert(
        pki,
        extensions=[uscc_extension(der_string(USCC_WRONG_CHECK))],
        subject=subject_with(NameOID.ORGANIZATIONAL_UNIT_NAME, USCC),
    )
    assert extract_uscc(cert, EVERY_SOURCE) == USCC


# --- extension encodings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        der_string(USCC),  # UTF8String
        der_string(USCC, 0x13),  # PrintableString
        der_string(USCC, 0x16),  # IA5String
        der_string(USCC, 0x1E),  # BMPString
        USCC.encode(),  # bare text, no DER
        f" {USCC}\x00".encode(),  # bare text with padding
        b"\x04\x14" + der_string(USCC),  # OCTET STRING around the string
        b"\x30\x1a\x06\x04\x2a\x03\x04\x05" + der_string(USCC),  # SEQUENCE { OID, UTF8String }
        f"统一社会信用代码：{USCC}".encode("gb18030"),  # GBK text with a label
        f"统一社会信用代码：{USCC}".encode(),
    ],
    ids=[
        "utf8",
        "printable",
        "ia5",
        "bmp",
        "raw",
        "raw-padded",
        "octet-string",
        "sequence",
        "gb18030-label",
        "utf8-label",
    ],
)
def test_extension_values_are_decoded_tolerantly(pki, value):
    cert = make_cert(pki, extensions=[uscc_extension(value)])
    assert extract_uscc(cert, DEFAULT) == USCC


def test_sheca_extension(pki):
    cert = make_cert(pki, extensions=[uscc_extension(der_string(USCC), oid=SHECA_OID)])
    assert extract_uscc(cert, DEFAULT) == USCC
    assert extract_uscc(cert, [f"ext:{USCC_OID}"]) is None


def test_extension_texts_of_truncated_der_fall_back_to_text():
    assert extension_texts(b"\x0c\x30" + USCC.encode()) == [f"\x0c0{USCC}"]


# --- subject attributes -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["NTRCN-", "VATCN-", "CN:", ""])
def test_organization_identifier_prefixes_are_stripped(pki, prefix):
    cert = make_cert(pki, subject=subject_with(ORGANIZATION_IDENTIFIER, prefix + USCC))
    assert extract_uscc(cert, ["organizationIdentifier"]) == USCC


@pytest.mark.parametrize(
    "common_name",
    [
        f"{ORG_NAME}（{USCC}）",
        f"{ORG_NAME} {USCC}",
        f"{USCC}@{ORG_NAME}",
        f"示例（{USCC_WRONG_CHECK}）{USCC}",
    ],
)
def test_common_name_may_hold_the_code_among_other_text(pki, common_name):
    cert = make_cert(pki, subject=org_subject(common_name=common_name))
    assert extract_uscc(cert, ["CN"]) == USCC


@pytest.mark.parametrize("common_name", [f"{ORG_NAME} X{USCC}", f"{ORG_NAME} {USCC}9", ORG_NAME])
def test_common_name_candidates_must_stand_alone(pki, common_name):
    cert = make_cert(pki, subject=org_subject(common_name=common_name))
    assert extract_uscc(cert, ["CN"]) is None


@pytest.mark.parametrize("value", [f"X{USCC}", f"{USCC}01", f"ID {USCC}"])
def test_other_attributes_must_hold_the_code_alone(pki, value):
    """No substring search outside CN: a longer number is never cut into a code."""
    cert = make_cert(pki, subject=subject_with(NameOID.SERIAL_NUMBER, value))
    assert extract_uscc(cert, ["serialNumber"]) is None


def test_several_attribute_values_are_all_tried(pki):
    subject = org_subject(
        extra=[
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "财务部"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, USCC),
        ]
    )
    assert extract_uscc(make_cert(pki, subject=subject), ["OU"]) == USCC
