"""Just enough DER reading for what ``cryptography`` does not expose: SM2 public keys (which it
cannot load) and extension values that hold a bare string (USCC extensions)."""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
BIT_STRING = 0x03
OCTET_STRING = 0x04
CONTEXT_0 = 0xA0
# Tag -> codec of the ASN.1 string types CAs use for identifiers.
STRING_CODECS: dict[int, str] = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T61), in practice Latin-1
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1E: "utf-16-be",  # BMPString
}


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


@dataclass(frozen=True)
class Tlv:
    """One DER element: its tag, its content octets and the whole encoding."""

    tag: int
    value: bytes
    raw: bytes


def read_tlv(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Read the element starting at ``offset``; return it and the offset just after it."""
    if offset + 2 > len(data):
        raise DerError("truncated element")
    tag, length, start = data[offset], data[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DerError("unsupported length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise DerError("element longer than its container")
    return Tlv(tag, data[start:end], data[offset:end]), end


def children(value: bytes) -> list[Tlv]:
    """The elements inside a constructed element's content octets."""
    items: list[Tlv] = []
    offset = 0
    while offset < len(value):
        item, offset = read_tlv(value, offset)
        items.append(item)
    return items


def read_single(data: bytes) -> Tlv:
    """Exactly one element filling ``data``."""
    item, end = read_tlv(data)
    if end != len(data):
        raise DerError("trailing bytes")
    return item


def subject_public_key_info(cert_der: bytes) -> tuple[Tlv, bytes]:
    """``(AlgorithmIdentifier, key bits)`` of a certificate (RFC 5280 §4.1): needed for SM2 keys,
    whose curve ``cryptography`` refuses to load."""
    certificate = read_single(cert_der)
    tbs = children(certificate.value)[0]
    fields = children(tbs.value)
    index = 1 if fields[0].tag == CONTEXT_0 else 0  # version [0] is optional
    spki = fields[index + 5]
    algorithm, bits = children(spki.value)
    if bits.tag != BIT_STRING or not bits.value or bits.value[0] != 0:
        raise DerError("subjectPublicKey is not a whole-byte BIT STRING")
    return algorithm, bits.value[1:]


def decode_text(value: bytes) -> str | None:
    """A string stored in an extension either as a DER string type (possibly inside an OCTET
    STRING) or as raw text: CAs do both (docs/ukey.md §2)."""
    try:
        item = read_single(value)
    except DerError:
        item = None
    if item is not None and item.tag in STRING_CODECS:
        try:
            return item.value.decode(STRING_CODECS[item.tag])
        except UnicodeDecodeError:
            return None
    if item is not None and item.tag == OCTET_STRING:
        return decode_text(item.value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None
