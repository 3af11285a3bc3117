"""Per-issuer entries of uscc-order.json: USCC sources, the policies and EKUs an organisation
certificate must carry, and a strict reading that names the file and the entry at fault."""

from __future__ import annotations

import json

import pytest
from cryptography.x509.oid import NameOID

from idp.auth.cert.errors import NotOrganisationCertificateError
from idp.auth.cert.issuers import (
    DEFAULT_RULES,
    IssuerRules,
    certificate_policies,
    check_organisation_certificate,
    extended_key_usages,
    load_issuer_rules,
)
from idp.config import ConfigError
from tests.pki import CLIENT_AUTH, ORG_EKU, ORG_POLICY, PERSONAL_POLICY

DEFAULT = ["ext:1.2.156.10260.4.1.4", "ext:1.2.156.1.8888.148"]


def write(tmp_path, content) -> object:
    path = tmp_path / "uscc-order.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# --- reading the file ---------------------------------------------------------------------------


def test_a_list_is_the_issuers_uscc_sources(pki, tmp_path):
    issuer = pki.intermediate.cert.subject
    rules = load_issuer_rules(write(tmp_path, {issuer.rfc4514_string(): ["serialNumber", "CN"]}))
    assert rules[issuer] == IssuerRules(uscc_order=("serialNumber", "CN"))
    assert rules[issuer].order(DEFAULT) == ["serialNumber", "CN"]
    assert rules.get(pki.root.cert.subject, DEFAULT_RULES).order(DEFAULT) == DEFAULT


def test_an_object_sets_sources_policies_and_ekus(pki, tmp_path):
    issuer = pki.intermediate.cert.subject
    entry = {"uscc": "ext:1.2.156.1.8888.148,OU", "policies": [ORG_POLICY], "eku": [ORG_EKU]}
    rules = load_issuer_rules(write(tmp_path, {issuer.rfc4514_string(): entry}))
    assert rules[issuer] == IssuerRules(
        uscc_order=("ext:1.2.156.1.8888.148", "OU"),
        policies=frozenset({ORG_POLICY}),
        eku=frozenset({ORG_EKU}),
    )


def test_requirements_alone_keep_the_default_sources(pki, tmp_path):
    issuer = pki.intermediate.cert.subject
    rules = load_issuer_rules(write(tmp_path, {issuer.rfc4514_string(): {"eku": [ORG_EKU]}}))
    assert rules[issuer].order(DEFAULT) == DEFAULT


def test_issuer_names_with_rfc4514_attribute_names(tmp_path):
    name = "CN=某某 CA,organizationIdentifier=NTRCN-1,serialNumber=7,C=CN"
    path = tmp_path / "uscc-order.json"
    path.write_text(json.dumps({name: "OU"}, ensure_ascii=False))
    (parsed,) = load_issuer_rules(path)
    assert parsed.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "7"


def test_no_file_means_the_defaults_for_every_issuer(tmp_path):
    assert load_issuer_rules(tmp_path / "uscc-order.json") == {}


ISSUER = "CN=Test intermediate CA,O=UKey Test PKI,C=CN"
MALFORMED = {
    "not json": ("not json", r"uscc-order\.json: Expecting value"),
    "not an object": ("[]", r"uscc-order\.json: expected an object"),
    "entry not a list": ({ISSUER: 5}, "expected a list of USCC sources or an object"),
    "empty object": ({ISSUER: {}}, "expected a list of USCC sources or an object"),
    "unknown source": ({ISSUER: ["bogus"]}, "unknown USCC source 'bogus'"),
    "malformed extension oid": ({ISSUER: ["ext:1.2.x"]}, "unknown USCC source 'ext:1.2.x'"),
    "no source": ({ISSUER: []}, "no USCC source named"),
    "sources not strings": ({ISSUER: {"uscc": [1]}}, "must be a list of strings"),
    "unknown key": ({ISSUER: {"policy": [ORG_POLICY]}}, "unknown key 'policy'"),
    "malformed policy": ({ISSUER: {"policies": ["1.2.x"]}}, "\"policies\": '1.2.x' is not an OID"),
    "policy arc": ({ISSUER: {"policies": ["1.45.1"]}}, "'1.45.1' is not an OID"),
    "empty ekus": ({ISSUER: {"eku": []}}, '"eku" must be a non-empty list of OIDs'),
    "eku as text": ({ISSUER: {"eku": ORG_EKU}}, '"eku" must be a non-empty list of OIDs'),
    "name with spaces": ({"C=CN, O=Test": ["CN"]}, "not an RFC 4514 name"),
    "empty name": ({"": ["CN"]}, "names no issuer"),
    "same issuer twice": (
        f'{{"{ISSUER}": ["OU"], "{ISSUER}": {{"policies": ["{ORG_POLICY}"]}}}}',
        "appears twice",
    ),
    "same issuer spelt twice": (
        {ISSUER: ["OU"], "2.5.4.3=Test intermediate CA,O=UKey Test PKI,C=CN": ["CN"]},
        "same issuer as an earlier entry",
    ),
}


@pytest.mark.parametrize(("content", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_files_are_refused_naming_the_file_and_entry(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_issuer_rules(path)
    assert str(caught.value).startswith(f"{path}: ")
    if isinstance(content, dict) and "twice" not in message:
        assert "entry '" in str(caught.value)


# --- organisation-certificate requirements ------------------------------------------------------


def test_policies_and_ekus_are_read_from_the_certificate(pki):
    assert certificate_policies(pki["org_policy"].cert) == {ORG_POLICY}
    assert certificate_policies(pki["employee"].cert) == {PERSONAL_POLICY}
    assert extended_key_usages(pki["org_eku"].cert) == {CLIENT_AUTH, ORG_EKU}
    assert certificate_policies(pki["good_ec"].cert) == extended_key_usages(pki["good_ec"].cert)
    assert extended_key_usages(pki["good_ec"].cert) == frozenset()


@pytest.mark.parametrize(
    ("rules", "accepted", "refused"),
    [
        (DEFAULT_RULES, ["good_ec", "employee", "org_policy", "org_eku"], []),
        (
            IssuerRules(policies=frozenset({ORG_POLICY})),
            ["org_policy"],
            ["good_ec", "employee", "org_eku"],
        ),
        (
            IssuerRules(eku=frozenset({ORG_EKU})),
            ["org_eku"],
            ["good_ec", "employee", "org_policy"],
        ),
        (
            IssuerRules(policies=frozenset({ORG_POLICY}), eku=frozenset({ORG_EKU})),
            [],
            ["good_ec", "employee", "org_policy", "org_eku"],
        ),
    ],
    ids=["defaults", "policy", "eku", "both"],
)
def test_organisation_certificate_requirements(pki, rules, accepted, refused):
    for leaf in accepted:
        check_organisation_certificate(pki[leaf].cert, rules)
    for leaf in refused:
        with pytest.raises(NotOrganisationCertificateError):
            check_organisation_certificate(pki[leaf].cert, rules)


def test_any_one_of_the_listed_policies_will_do(pki):
    rules = IssuerRules(policies=frozenset({"1.3.6.1.4.1.59999.9", ORG_POLICY}))
    check_organisation_certificate(pki["org_policy"].cert, rules)
