"""Per issuing CA: which of its certificates are organisation certificates, and where their USCC is.

A CA issues organisation, personal and employee certificates, and personal and employee ones
often carry the organisation's code too (in the subject, at times even in the organisation
extension). Without an entry, a CA's certificates get the defaults: the USCC only from the
organisation-certificate extensions (``IDP_CERT_USCC_ORDER``), no policy or EKU requirement. The
trust directory's ``uscc-order.json`` may give a CA, keyed by its RFC 4514 name, an entry of
its own (keys/trust/README.md):

- ``uscc``: where this CA puts the code, subject attributes allowed;
- ``policies``: certificate-policy OIDs, one of which its organisation certificates carry;
- ``eku``: extended-key-usage OIDs, one of which its organisation certificates carry.

A certificate of a CA with ``policies`` or ``eku`` that lacks them is refused as no organisation
certificate (:class:`NotOrganisationCertificateError`), whatever else it carries. The file is read
strictly, since a typo that silently dropped a requirement would let personal certificates in
again: an unknown key or source, a malformed OID or a repeated issuer is a ConfigError naming
the file and the entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.x509.oid import NameOID

from idp.auth.cert.errors import NotOrganisationCertificateError
from idp.auth.cert.uscc import ORGANIZATION_IDENTIFIER, is_oid, parse_order
from idp.config import ConfigError

ENTRY_KEYS = ("uscc", "policies", "eku")
RFC4514_NAMES = {
    "serialNumber": NameOID.SERIAL_NUMBER,
    "organizationIdentifier": ORGANIZATION_IDENTIFIER,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "E": NameOID.EMAIL_ADDRESS,
}
ExtensionT = TypeVar("ExtensionT", bound=x509.ExtensionType)


@dataclass(frozen=True)
class IssuerRules:
    """One CA's entry; the defaults where it has none."""

    uscc_order: tuple[str, ...] = ()  # empty: IDP_CERT_USCC_ORDER
    policies: frozenset[str] = frozenset()
    eku: frozenset[str] = frozenset()

    def order(self, default: list[str]) -> list[str]:
        """Where to read the USCC for this CA's certificates."""
        return list(self.uscc_order) or default


DEFAULT_RULES = IssuerRules()


def load_issuer_rules(path: Path) -> dict[x509.Name, IssuerRules]:
    """The entries of ``path``; none when it does not exist. ConfigError names the file and,
    where one is at fault, the entry."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object mapping issuer names to their entries")
    rules: dict[x509.Name, IssuerRules] = {}
    for issuer, entry in data.items():
        try:
            name = issuer_name(issuer)
            if name in rules:
                raise ValueError("names the same issuer as an earlier entry")
            rules[name] = parse_entry(entry)
        except ValueError as error:
            raise ConfigError(f"{path}: entry {issuer!r}: {error}") from None
    return rules


def issuer_name(text: str) -> x509.Name:
    """An entry's key: the issuer as RFC 4514 text (``CN=…,O=…,C=CN``)."""
    try:
        name = x509.Name.from_rfc4514_string(text, RFC4514_NAMES)
    except ValueError:
        raise ValueError("the key is not an RFC 4514 name") from None
    if len(name) == 0:
        raise ValueError("the key names no issuer")
    return name


def parse_entry(entry: object) -> IssuerRules:
    """A list (or comma-separated string) of USCC sources, or an object with ``uscc``,
    ``policies`` and ``eku``, each optional but at least one present."""
    if isinstance(entry, str | list):
        return IssuerRules(uscc_order=_sources(entry))
    if not isinstance(entry, dict) or not entry:
        raise ValueError(
            'expected a list of USCC sources or an object with "uscc", "policies" or "eku"'
        )
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(ENTRY_KEYS)})")
    return IssuerRules(
        uscc_order=_sources(entry["uscc"]) if "uscc" in entry else (),
        policies=_oids(entry, "policies"),
        eku=_oids(entry, "eku"),
    )


def check_organisation_certificate(cert: x509.Certificate, rules: IssuerRules) -> None:
    """Refuse a certificate without the policies or EKUs its CA's entry requires (one of each
    list that is given): a personal or employee certificate of that CA."""
    for required, found, kind in (
        (rules.policies, certificate_policies(cert), "certificate policies"),
        (rules.eku, extended_key_usages(cert), "extended key usages"),
    ):
        if required and not required & found:
            raise NotOrganisationCertificateError(
                detail=f"{kind} {sorted(found)} include none of {sorted(required)}"
            )


def certificate_policies(cert: x509.Certificate) -> frozenset[str]:
    """The policy OIDs of the certificatePolicies extension (none when absent or unreadable)."""
    policies = _extension(cert, x509.CertificatePolicies)
    return frozenset(p.policy_identifier.dotted_string for p in policies or [])


def extended_key_usages(cert: x509.Certificate) -> frozenset[str]:
    """The OIDs of the extendedKeyUsage extension (none when absent or unreadable)."""
    usages = _extension(cert, x509.ExtendedKeyUsage)
    return frozenset(oid.dotted_string for oid in usages or [])


def _extension(cert: x509.Certificate, kind: type[ExtensionT]) -> ExtensionT | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _sources(value: object) -> tuple[str, ...]:
    if not isinstance(value, str | list) or not all(isinstance(t, str) for t in value):
        raise ValueError("the USCC sources must be a list of strings")
    return tuple(parse_order(value, subject_attributes=True))


def _oids(entry: Mapping[str, object], key: str) -> frozenset[str]:
    if key not in entry:
        return frozenset()
    value = entry[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f'"{key}" must be a non-empty list of OIDs')
    for oid in value:
        if not is_oid(oid):
            raise ValueError(f'"{key}": {oid!r} is not an OID')
    return frozenset(value)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """JSON objects without repeated keys: json would keep the last one silently."""
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key {key!r} appears twice")
        result[key] = value
    return result
