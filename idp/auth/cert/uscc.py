"""Reading the unified social credit code (统一社会信用代码, GB 32100) from a certificate.

CAs put the code in different places (see docs/ukey.md §2): a private extension
(``1.2.156.10260.4.1.4``, SHECA's ``1.2.156.1.8888.148``) holding a DER string or bare text, or a
subject attribute (``serialNumber``, ``organizationIdentifier`` as ``NTRCN-<code>``, ``OU``, inside
``CN``). The places are tried in a configured order. The default (``IDP_CERT_USCC_ORDER``) names
organisation-certificate extensions only: personal and employee certificates often carry their
organisation's code in a subject attribute (a CN such as "张三(9131…)"), so a subject attribute
proves nothing unless the trust directory's ``uscc-order.json`` enables it for a CA known to use
it in organisation certificates only. Only a value whose GB 32100 check character is right
counts, so a wrong or foreign number is skipped, never returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from idp.identity.uscc import is_valid_uscc

ORGANIZATION_IDENTIFIER = ObjectIdentifier("2.5.4.97")
SUBJECT_SOURCES: dict[str, ObjectIdentifier] = {
    "serialNumber": NameOID.SERIAL_NUMBER,
    "organizationIdentifier": ORGANIZATION_IDENTIFIER,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}
# Sources whose value may hold the code among other text ("某某公司(9131...)"); the others must
# hold the code alone (after a scheme prefix), so that a longer number is never cut into a code.
SEARCHED_SOURCES = {"CN"}
CANDIDATE = re.compile(r"(?<![0-9A-Za-z])[0-9A-HJ-NP-RTUWXY]{18}(?![0-9A-Za-z])")
# ETSI EN 319 412-1 semantics identifier ("NTRCN-", "VATCN-") or a bare country prefix ("CN:").
SCHEME_PREFIX = re.compile(r"^(?:[A-Z]{3}[A-Z]{2}-|[A-Z]{2}:)")
OID = re.compile(r"^[0-2](?:\.(?:0|[1-9][0-9]*))+$")
ORDER_FILE = "uscc-order.json"

# DER tags of the string types, with the codec of their content octets.
STRING_TAGS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}
OCTET_STRING = 0x04
CONSTRUCTED = 0x20
MAX_DEPTH = 4


def parse_order(text: str | list[str], *, subject_attributes: bool) -> list[str]:
    """Parse ``"ext:1.2.156.10260.4.1.4,serialNumber,OU,CN"`` (or a list of the same tokens).

    Subject attributes are accepted only where ``subject_attributes`` says (an issuer's own
    order). Raises ValueError naming the first unusable token, or when no source is named.
    """
    tokens = text.split(",") if isinstance(text, str) else list(text)
    order = [token.strip() for token in tokens if token.strip()]
    for token in order:
        if token in SUBJECT_SOURCES:
            if not subject_attributes:
                raise ValueError(
                    f"subject attribute {token!r} may be enabled only per issuer, in {ORDER_FILE}"
                )
        elif not (token.startswith("ext:") and is_oid(token[4:])):
            raise ValueError(f"unknown USCC source {token!r}")
    if not order:
        raise ValueError("no USCC source named")
    return order


def is_oid(text: str) -> bool:
    """A dotted object identifier with valid first arcs (``1.2.156.10260.4.1.4``)."""
    if not OID.match(text):
        return False
    try:
        ObjectIdentifier(text)
    except ValueError:
        return False
    return True


def extract_uscc(cert: x509.Certificate, order: list[str]) -> str | None:
    """The first value with a valid GB 32100 check character, reading the sources in ``order``."""
    for source in order:
        for text in _source_texts(cert, source):
            code = _code_in(text, search=source.startswith("ext:") or source in SEARCHED_SOURCES)
            if code is not None:
                return code
    return None


def _source_texts(cert: x509.Certificate, source: str) -> Iterator[str]:
    if source.startswith("ext:"):
        try:
            extension = cert.extensions.get_extension_for_oid(ObjectIdentifier(source[4:]))
        except (x509.ExtensionNotFound, ValueError):
            return
        value = extension.value
        if isinstance(value, x509.UnrecognizedExtension):
            yield from extension_texts(value.value)
        return
    for attribute in cert.subject.get_attributes_for_oid(SUBJECT_SOURCES[source]):
        text = attribute.value
        yield text if isinstance(text, str) else _decode_text(text)


def _code_in(text: str, *, search: bool) -> str | None:
    value = SCHEME_PREFIX.sub("", text.strip().strip("\x00").strip().upper())
    if is_valid_uscc(value):
        return value
    if search:
        for match in CANDIDATE.finditer(text):
            if is_valid_uscc(match.group()):
                return match.group()
    return None


def extension_texts(raw: bytes) -> list[str]:
    """The texts an extension value may hold: the strings of its DER structure (any string
    type, inside OCTET STRINGs, SEQUENCEs or tagged fields), then the bytes read as text."""
    return [*_der_strings(raw, depth=0), _decode_text(raw)]


def _der_strings(data: bytes, *, depth: int) -> Iterator[str]:
    """Strings in ``data`` when it is entirely well-formed DER; nothing otherwise."""
    elements = _read_elements(data)
    if elements is None or depth > MAX_DEPTH:
        return
    for tag, content in elements:
        if tag in STRING_TAGS:
            try:
                yield content.decode(STRING_TAGS[tag])
            except UnicodeDecodeError:
                continue
        elif tag == OCTET_STRING:
            inner = list(_der_strings(content, depth=depth + 1))
            yield from inner or [_decode_text(content)]
        elif tag & CONSTRUCTED:
            yield from _der_strings(content, depth=depth + 1)


def _read_elements(data: bytes) -> list[tuple[int, bytes]] | None:
    """Split ``data`` into (tag, content) pairs; None unless it is a clean run of DER elements."""
    elements = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data) or data[offset] & 0x1F == 0x1F:
            return None  # truncated, or a multi-byte tag no CA uses for these values
        tag, length, offset = data[offset], data[offset + 1], offset + 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or offset + count > len(data):
                return None
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + length > len(data):
            return None
        elements.append((tag, data[offset : offset + length]))
        offset += length
    return elements or None


def _decode_text(raw: bytes) -> str:
    for codec in ("utf-8", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")
