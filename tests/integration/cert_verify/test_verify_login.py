"""verify_login end to end with the test PKI: every check of docs/ukey-protocol.md §3, its order,
and the revocation policy (CRL files, fetched CRLs and their cache, OCSP, outages)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.x509.oid import ObjectIdentifier

from idp.auth.cert import errors
from idp.auth.cert.verify import VerifiedCertificate, decode_login_form, describe, verify_login
from idp.config import Settings
from tests.pki import (
    CLIENT_AUTH,
    ORG_EKU,
    ORG_NAME,
    ORG_POLICY,
    ORIGIN,
    PERSON_NAME,
    PERSONAL_POLICY,
    SERVER_AUTH,
    USCC,
    Leaf,
    Sm2Authority,
    der_string,
    ec_key,
    issue_leaf,
    key_purposes,
    org_subject,
    policies,
    signed_login,
    uscc_extension,
)

USCC_EXTENSION = ObjectIdentifier("1.2.156.10260.4.1.4")


class Challenges:
    """The provider's challenge store, reduced to what verify_login sees."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.asked: list[str] = []

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(32)
        self.live.add(nonce)
        return nonce

    def consume(self, nonce: str) -> bool:
        self.asked.append(nonce)
        if nonce in self.live:
            self.live.remove(nonce)
            return True
        return False


@pytest.fixture
def challenges() -> Challenges:
    return Challenges()


@pytest.fixture
def trust_dir(pki, tmp_path) -> Path:
    return pki.write_trust_dir(tmp_path / "trust")


def make_settings(tmp_path: Path, trust: Path, **overrides) -> Settings:
    return Settings.from_env({}, instance_dir=tmp_path / "instance", trust_dir=trust, **overrides)


@pytest.fixture
def settings(tmp_path, trust_dir) -> Settings:
    """Defaults: fetch CRLs from distribution points, OCSP off, 60 s skew."""
    return make_settings(tmp_path, trust_dir)


def login(leaf, settings, challenges, *, now=None, **options) -> VerifiedCertificate:
    response = signed_login(leaf, nonce=challenges.issue(), **options)
    return verify_login(
        **response.login_kwargs(),
        expected_origin=ORIGIN,
        consume_challenge=challenges.consume,
        settings=settings,
        now=now,
    )


# --- successful logins --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "alg", "key_alg"),
    [
        ("good_rsa", "RS256", "RSA-2048"),
        ("good_rsa", "PS256", "RSA-2048"),
        ("good_ec", "ES256", "EC-P256"),
        ("good_sm2", "SM2", "SM2"),
    ],
)
def test_good_certificates_log_in(pki, settings, challenges, leaf, alg, key_alg):
    cert = pki[leaf].cert
    verified = login(pki[leaf], settings, challenges, alg=alg)
    assert verified.uscc == USCC
    assert verified.org_name == ORG_NAME
    assert verified.subject == cert.subject.rfc4514_string()
    assert verified.issuer == cert.issuer.rfc4514_string()
    assert int(verified.serial_hex, 16) == cert.serial_number
    assert len(verified.serial_hex) % 2 == 0 and verified.serial_hex == verified.serial_hex.upper()
    assert verified.fingerprint_sha256_hex == hashlib.sha256(pki[leaf].der).hexdigest()
    assert verified.not_after == cert.not_valid_after_utc
    assert verified.key_alg == key_alg
    assert challenges.live == set()


SUBJECT_PLACEMENTS = {
    "uscc_serial": "serialNumber",
    "uscc_ou": "OU",
    "uscc_orgid": "organizationIdentifier",
    "uscc_cn": "CN",
}


@pytest.mark.parametrize("leaf", [*SUBJECT_PLACEMENTS, "personal_cn"])
def test_a_code_in_the_subject_proves_nothing_by_default(pki, settings, challenges, leaf):
    """Personal and employee certificates often carry their organisation's code in the subject
    (CN "张三(9131…)"): by default only the organisation-certificate extensions count."""
    with pytest.raises(errors.NoUsccError):
        login(pki[leaf], settings, challenges)


@pytest.mark.parametrize(("leaf", "source"), SUBJECT_PLACEMENTS.items())
def test_a_code_in_the_subject_counts_where_the_issuers_order_names_it(
    pki, tmp_path, challenges, leaf, source
):
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    trust = pki.write_trust_dir(tmp_path / "trust-subject", rules={issuer: [source]})
    assert login(pki[leaf], make_settings(tmp_path, trust), challenges).uscc == USCC


def test_form_fields_work_end_to_end(pki, settings, challenges):
    response = signed_login(pki["good_ec"], nonce=challenges.issue())
    decoded = decode_login_form(**response.form())
    verified = verify_login(
        payload=decoded.payload,
        signature=decoded.signature,
        alg=decoded.alg,
        certificate=decoded.certificate,
        chain=decoded.chain,
        expected_origin=ORIGIN,
        consume_challenge=challenges.consume,
        settings=settings,
    )
    assert verified.uscc == USCC


def test_the_org_name_is_only_the_subject_o_never_the_cn(pki, settings, challenges):
    """A CN names a person in personal and employee certificates."""
    verified = login(pki["no_org_name"], settings, challenges)
    assert verified.uscc == USCC
    assert verified.org_name == ""
    assert PERSON_NAME in verified.subject


# --- organisation certificates of an issuer with requirements ----------------------------------


def trust_with_rules(pki, tmp_path, entry, *, issuer=None) -> Path:
    """A trust directory whose uscc-order.json gives ``entry`` to the intermediate CA."""
    name = (issuer or pki.intermediate.cert.subject).rfc4514_string()
    return pki.write_trust_dir(tmp_path / "trust-rules", rules={name: entry})


REQUIREMENTS = {
    "policy": ({"policies": [ORG_POLICY]}, "org_policy", ["employee", "good_ec", "org_eku"]),
    "eku": ({"eku": [ORG_EKU]}, "org_eku", ["employee", "good_ec", "org_policy"]),
}


@pytest.mark.parametrize(
    ("entry", "organisation", "others"), REQUIREMENTS.values(), ids=REQUIREMENTS.keys()
)
def test_an_issuers_requirement_refuses_its_other_certificates_despite_the_uscc_extension(
    pki, tmp_path, challenges, entry, organisation, others
):
    settings = make_settings(tmp_path, trust_with_rules(pki, tmp_path, entry))
    assert login(pki[organisation], settings, challenges).uscc == USCC
    for leaf in others:
        assert pki[leaf].cert.extensions.get_extension_for_oid(USCC_EXTENSION)
        with pytest.raises(errors.NotOrganisationCertificateError) as caught:
            login(pki[leaf], settings, challenges)
        assert caught.value.status == 400


def test_without_an_entry_an_employee_certificate_with_the_extension_logs_in(
    pki, settings, challenges
):
    """The defaults cannot tell: only the CA's entry says what its organisation certificates
    carry (keys/trust/README.md)."""
    assert login(pki["employee"], settings, challenges).uscc == USCC


def test_another_issuers_entry_does_not_apply(pki, tmp_path, challenges):
    entry = {"policies": [ORG_POLICY]}
    trust = trust_with_rules(pki, tmp_path, entry, issuer=pki.sm2_root.cert.subject)
    settings = make_settings(tmp_path, trust)
    assert login(pki["employee"], settings, challenges).uscc == USCC
    with pytest.raises(errors.NotOrganisationCertificateError):
        login(pki["good_sm2"], settings, challenges)


def test_requirements_are_checked_after_the_chain_and_before_the_uscc(pki, tmp_path, challenges):
    settings = make_settings(tmp_path, trust_with_rules(pki, tmp_path, {"eku": [ORG_EKU]}))
    personal = [policies(PERSONAL_POLICY), key_purposes(CLIENT_AUTH)]
    expired = issue_leaf(
        pki.intermediate,
        "expired_employee",
        extensions=personal,
        not_before=datetime.now(UTC) - timedelta(days=400),
        not_after=datetime.now(UTC) - timedelta(days=1),
    )
    with pytest.raises(errors.CertificateExpiredError):
        login(expired, settings, challenges)
    without_code = issue_leaf(pki.intermediate, "employee_without_code", extensions=personal)
    with pytest.raises(errors.NotOrganisationCertificateError):
        login(without_code, settings, challenges)
    with_wrong_code = issue_leaf(
        pki.intermediate,
        "org_with_broken_code",
        subject=org_subject(common_name=f"{PERSON_NAME} {USCC}"),
        extensions=[uscc_extension(der_string("91310000MA1K00001A")), key_purposes(ORG_EKU)],
    )
    with pytest.raises(errors.NoUsccError):
        login(with_wrong_code, settings, challenges)


# --- certificate failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "error"),
    [
        ("expired", errors.CertificateExpiredError),
        ("not_yet_valid", errors.CertificateNotYetValidError),
        ("revoked", errors.CertificateRevokedError),
        ("untrusted", errors.UntrustedIssuerError),
        ("under_revoked_ca", errors.UntrustedIssuerError),
        ("no_digital_signature", errors.KeyUsageError),
        ("server_auth", errors.KeyUsageError),
        ("no_uscc", errors.NoUsccError),
        ("wrong_check", errors.NoUsccError),
        ("revoked_sm2", errors.CertificateRevokedError),
    ],
)
def test_certificate_failures(pki, settings, challenges, leaf, error):
    with pytest.raises(error) as caught:
        login(pki[leaf], settings, challenges)
    assert type(caught.value) is error
    assert caught.value.status == 400


def test_validity_is_judged_at_now(pki, settings, challenges):
    later = datetime.now(UTC) + timedelta(days=2 * 365)
    with pytest.raises(errors.StaleTimestampError):
        login(pki["good_ec"], settings, challenges, now=later)
    with pytest.raises(errors.CertificateExpiredError):
        login(pki["good_ec"], settings, challenges, now=later, ts=int(later.timestamp()))


ANY_PURPOSE = "2.5.29.37.0"


@pytest.mark.parametrize(
    "purposes", [[CLIENT_AUTH], [ANY_PURPOSE], [SERVER_AUTH, CLIENT_AUTH]], ids=str
)
def test_an_extended_key_usage_allowing_client_authentication_logs_in(
    pki, settings, challenges, purposes
):
    leaf = issue_leaf(
        pki.intermediate,
        "client",
        extensions=[uscc_extension(der_string(USCC)), key_purposes(*purposes)],
    )
    assert login(leaf, settings, challenges).uscc == USCC


@pytest.mark.parametrize("purposes", [[SERVER_AUTH], ["1.3.6.1.5.5.7.3.3"], [ORG_EKU]], ids=str)
def test_an_extended_key_usage_without_client_authentication_cannot_log_in(
    pki, settings, challenges, purposes
):
    """TLS server and code-signing certificates of a trusted CA may carry the code too."""
    leaf = issue_leaf(
        pki.intermediate,
        "other",
        extensions=[uscc_extension(der_string(USCC)), key_purposes(*purposes)],
    )
    with pytest.raises(errors.KeyUsageError):
        login(leaf, settings, challenges)


def test_the_eku_an_issuers_entry_names_is_accepted_as_the_login_purpose(pki, tmp_path, challenges):
    leaf = issue_leaf(
        pki.intermediate,
        "own_eku",
        extensions=[uscc_extension(der_string(USCC)), key_purposes(ORG_EKU)],
    )
    settings = make_settings(tmp_path, trust_with_rules(pki, tmp_path, {"eku": [ORG_EKU]}))
    assert login(leaf, settings, challenges).uscc == USCC
    with pytest.raises(errors.KeyUsageError):
        login(pki["server_auth"], settings, challenges)


def test_a_ca_certificate_cannot_log_in(pki, settings, challenges):
    ca = pki.intermediate
    leaf = Leaf(name="ca", cert=ca.cert, key=ca.key, chain=ca.parent.chain, alg="RS256")
    with pytest.raises(errors.KeyUsageError):
        login(leaf, settings, challenges)


def test_untrusted_without_any_anchor(pki, tmp_path, challenges):
    empty = tmp_path / "empty-trust"
    empty.mkdir()
    with pytest.raises(errors.UntrustedIssuerError):
        login(pki["good_ec"], make_settings(tmp_path, empty), challenges)


def test_impostor_ca_with_the_same_name_is_untrusted(pki, settings, challenges):
    impostor = Sm2Authority("sm2-root")  # same subject as the trusted SM2 root, another key
    leaf = impostor.issue_leaf("impostor", crl_url=None)
    with pytest.raises(errors.UntrustedIssuerError):
        login(leaf, settings, challenges)


def test_chain_with_a_foreign_intermediate_is_untrusted(pki, settings, challenges):
    leaf = pki["untrusted"]
    leaf_with_chain = type(leaf)(
        name=leaf.name, cert=leaf.cert, key=leaf.key, chain=[pki.intermediate.der], alg=leaf.alg
    )
    with pytest.raises(errors.UntrustedIssuerError):
        login(leaf_with_chain, settings, challenges)


# --- revocation ---------------------------------------------------------------------------------


def test_revoked_by_crl_file_without_fetching(pki, tmp_path, challenges):
    trust = pki.write_trust_dir(tmp_path / "trust-crl", crl_files=True)
    settings = make_settings(tmp_path, trust, cert_fetch_revocation=False)
    before = pki.server.hits("/crl/")
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["revoked"], settings, challenges)
    assert login(pki["good_rsa"], settings, challenges).uscc == USCC
    assert pki.server.hits("/crl/") == before


def test_revoked_by_fetched_crl_and_the_crl_is_cached(pki, settings, challenges):
    url = "/crl/intermediate.crl"
    before = pki.server.hits(url)
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["revoked"], settings, challenges)
    login(pki["good_ec"], settings, challenges)
    login(pki["good_rsa"], settings, challenges)
    assert pki.server.hits(url) == before + 1


def test_without_fetching_a_declared_crl_needs_a_file(pki, tmp_path, trust_dir, challenges):
    settings = make_settings(tmp_path, trust_dir, cert_fetch_revocation=False)
    with pytest.raises(errors.RevocationUnknownError) as caught:
        login(pki["good_ec"], settings, challenges)
    assert caught.value.status == 503


def test_crl_server_down(pki, settings, challenges):
    with pki.server.outage(), pytest.raises(errors.RevocationUnknownError) as caught:
        login(pki["good_ec"], settings, challenges)
    assert caught.value.status == 503


def test_crl_distribution_point_refusing_connections(pki, settings, challenges):
    with pytest.raises(errors.RevocationUnknownError):
        login(pki["dead_crl_dp"], settings, challenges)


def test_ocsp_revoked(pki, tmp_path, trust_dir, challenges):
    settings = make_settings(tmp_path, trust_dir, cert_fetch_revocation=False, cert_ocsp=True)
    before = pki.server.hits("/ocsp/")
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["ocsp_revoked"], settings, challenges)
    assert login(pki["ocsp_only"], settings, challenges).uscc == USCC
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["revoked"], settings, challenges)  # CRL-DP too, but only OCSP is reachable
    assert pki.server.hits("/ocsp/") == before + 3


def test_ocsp_only_certificate_with_ocsp_off_needs_a_crl(pki, tmp_path, trust_dir, challenges):
    with pytest.raises(errors.RevocationUnknownError):
        login(pki["ocsp_only"], make_settings(tmp_path, trust_dir), challenges)
    with_crls = pki.write_trust_dir(tmp_path / "trust-crl", crl_files=True)
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["ocsp_revoked"], make_settings(tmp_path, with_crls), challenges)


def test_ocsp_down_falls_back_to_the_crl(pki, tmp_path, challenges):
    trust = pki.write_trust_dir(tmp_path / "trust-crl", crl_files=True)
    settings = make_settings(tmp_path, trust, cert_fetch_revocation=False, cert_ocsp=True)
    with pki.server.outage():
        assert login(pki["good_ec"], settings, challenges).uscc == USCC
        with pytest.raises(errors.CertificateRevokedError):
            login(pki["revoked"], settings, challenges)
        # No CRL-DP, but the issuer's CRL file (no issuing distribution point) covers it.
        assert login(pki["ocsp_only"], settings, challenges).uscc == USCC
        with pytest.raises(errors.CertificateRevokedError):
            login(pki["ocsp_revoked"], settings, challenges)


def test_certificates_declaring_nothing(pki, tmp_path, trust_dir, challenges):
    """Not checked without a CRL of their issuer; checked, hard, when the directory has one."""
    leaf = issue_leaf(pki.intermediate, "silent", crl_url=None, ocsp_url=None)
    settings = make_settings(tmp_path, trust_dir, cert_fetch_revocation=False)
    assert login(leaf, settings, challenges).uscc == USCC
    pki.intermediate.revoke(leaf.cert)
    with_crls = pki.write_trust_dir(tmp_path / "trust-crl", crl_files=True)
    with pytest.raises(errors.CertificateRevokedError):
        login(leaf, make_settings(tmp_path, with_crls, cert_fetch_revocation=False), challenges)


def test_ca_revocation_is_soft_when_unobtainable(pki, tmp_path, challenges):
    """The intermediate names the root's CRL; without it (no file, no fetching) it passes."""
    trust = pki.write_trust_dir(tmp_path / "trust-ee-crl")
    (trust / "intermediate.crl").write_bytes(pki.intermediate.crl_der())
    settings = make_settings(tmp_path, trust, cert_fetch_revocation=False)
    assert login(pki["good_ec"], settings, challenges).uscc == USCC
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["revoked"], settings, challenges)


@pytest.mark.parametrize(("leaf", "ca"), [("good_ec", "intermediate"), ("good_sm2", "sm2_root")])
def test_crl_with_a_broken_signature_is_not_trusted(pki, tmp_path, challenges, leaf, ca):
    trust = pki.write_trust_dir(tmp_path / "trust-bad-crl")
    crl = bytearray(getattr(pki, ca).crl_der())
    crl[-3] ^= 0x01  # inside the signature value
    (trust / f"{ca}.crl").write_bytes(bytes(crl))
    settings = make_settings(tmp_path, trust, cert_fetch_revocation=False)
    with pytest.raises(errors.RevocationUnknownError) as caught:
        login(pki[leaf], settings, challenges)
    assert "signature" in caught.value.detail


def test_stale_crl_file_is_not_trusted(pki, tmp_path, challenges):
    trust = pki.write_trust_dir(tmp_path / "trust-crl", crl_files=True)
    settings = make_settings(tmp_path, trust, cert_fetch_revocation=False)
    future = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(errors.RevocationUnknownError):
        login(pki["good_ec"], settings, challenges, now=future, ts=int(future.timestamp()))


# --- signature, payload and challenge failures --------------------------------------------------


def test_bad_signature_does_not_burn_the_challenge(pki, settings, challenges):
    response = signed_login(pki["good_ec"], nonce=challenges.issue())
    broken = bytearray(response.signature)
    broken[0] ^= 0xFF
    with pytest.raises(errors.BadSignatureError):
        verify_login(
            **(response.login_kwargs() | {"signature": bytes(broken)}),
            expected_origin=ORIGIN,
            consume_challenge=challenges.consume,
            settings=settings,
        )
    assert challenges.asked == [] and len(challenges.live) == 1


def test_signature_by_a_different_key(pki, settings, challenges):
    with pytest.raises(errors.BadSignatureError):
        login(pki["good_ec"], settings, challenges, key=ec_key())
    with pytest.raises(errors.BadSignatureError):
        login(pki["good_ec"], settings, challenges, key=pki["revoked"].key)


def test_certificate_swapped_after_signing(pki, settings, challenges):
    response = signed_login(pki["revoked"], nonce=challenges.issue())
    swapped = response.login_kwargs() | {"certificate": pki["good_ec"].der}
    with pytest.raises(errors.CertificateMismatchError):
        verify_login(
            **swapped,
            expected_origin=ORIGIN,
            consume_challenge=challenges.consume,
            settings=settings,
        )
    # The attacker rewrites cert_sha256 too: then the signature no longer matches.
    with pytest.raises(errors.BadSignatureError):
        login(pki["good_ec"], settings, challenges, key=pki["revoked"].key)
    assert challenges.asked == []


def test_payload_for_another_origin(pki, settings, challenges):
    with pytest.raises(errors.OriginMismatchError):
        login(pki["good_ec"], settings, challenges, origin="https://phish.example")
    assert challenges.asked == []


@pytest.mark.parametrize("offset", [-3600, -61, 61, 3600])
def test_stale_timestamp(pki, settings, challenges, offset):
    with pytest.raises(errors.StaleTimestampError):
        login(pki["good_ec"], settings, challenges, ts=int(time.time()) + offset)


def test_replayed_response(pki, settings, challenges):
    response = signed_login(pki["good_ec"], nonce=challenges.issue())
    arguments = response.login_kwargs() | {
        "expected_origin": ORIGIN,
        "consume_challenge": challenges.consume,
        "settings": settings,
    }
    verify_login(**arguments)
    with pytest.raises(errors.ChallengeError):
        verify_login(**arguments)


def test_unknown_challenge(pki, settings, challenges):
    response = signed_login(pki["good_ec"], nonce=secrets.token_urlsafe(32))
    with pytest.raises(errors.ChallengeError):
        verify_login(
            **response.login_kwargs(),
            expected_origin=ORIGIN,
            consume_challenge=challenges.consume,
            settings=settings,
        )


def test_challenge_is_consumed_before_the_chain_is_judged(pki, settings, challenges):
    with pytest.raises(errors.CertificateRevokedError):
        login(pki["revoked"], settings, challenges)
    assert len(challenges.asked) == 1 and challenges.live == set()


MALFORMED = {
    "payload not json": {"payload": b"not json"},
    "payload not canonical": {"payload": b"{}"},
    "certificate not der": {"certificate": b"\x30\x03junk"},
    "chain entry not der": {"chain": [b"junk"]},
    "unknown alg": {"alg": "HS256"},
}


@pytest.mark.parametrize("changes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input(pki, settings, challenges, changes):
    response = signed_login(pki["good_ec"], nonce=challenges.issue())
    with pytest.raises(errors.MalformedResponseError):
        verify_login(
            **(response.login_kwargs() | changes),
            expected_origin=ORIGIN,
            consume_challenge=challenges.consume,
            settings=settings,
        )


def test_check_order_payload_before_certificate(pki, settings, challenges):
    """An expired, untrusted certificate signing for another origin fails on the origin."""
    with pytest.raises(errors.OriginMismatchError):
        login(pki["untrusted"], settings, challenges, origin="https://phish.example")
    with pytest.raises(errors.BadSignatureError):
        login(pki["expired"], settings, challenges, key=ec_key())


# --- trust directory ----------------------------------------------------------------------------


def test_uscc_order_override_per_issuer_is_reloaded(pki, settings, trust_dir, challenges):
    leaf = pki["uscc_serial"]
    with pytest.raises(errors.NoUsccError):
        login(leaf, settings, challenges)
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    order_file = trust_dir / "uscc-order.json"
    order_file.write_text(json.dumps({issuer: ["ext:1.2.156.10260.4.1.4", "serialNumber"]}))
    assert login(leaf, settings, challenges).uscc == USCC
    assert login(pki["good_ec"], settings, challenges).uscc == USCC
    order_file.write_text(json.dumps({issuer: ["ext:1.2.156.10260.4.1.4", "CN"]}))
    with pytest.raises(errors.NoUsccError):
        login(leaf, settings, challenges)


def test_new_anchor_is_picked_up_without_restart(pki, tmp_path, challenges):
    trust = tmp_path / "growing"
    trust.mkdir()
    settings = make_settings(tmp_path, trust)
    with pytest.raises(errors.UntrustedIssuerError):
        login(pki["good_sm2"], settings, challenges)
    (trust / "sm2.cer").write_bytes(pki.sm2_root.der)  # DER with a .cer suffix
    assert login(pki["good_sm2"], settings, challenges).key_alg == "SM2"


def test_broken_anchor_and_crl_files_are_skipped(pki, trust_dir, settings, challenges):
    (trust_dir / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    (trust_dir / "broken.crl").write_bytes(b"junk")
    assert login(pki["good_ec"], settings, challenges).uscc == USCC


@pytest.mark.parametrize(
    "content", ["{not json", '{"CN=A": {"policy": ["1.2.3"]}}', '{"CN=A": {"eku": ["x"]}}']
)
def test_a_broken_issuer_file_refuses_logins_until_fixed(
    pki, trust_dir, settings, challenges, content
):
    """It may have held an issuer's requirements: the defaults must not silently take over."""
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    rules_file = trust_dir / "uscc-order.json"
    rules_file.write_text(json.dumps({issuer: {"policies": [ORG_POLICY]}}))
    with pytest.raises(errors.NotOrganisationCertificateError):
        login(pki["employee"], settings, challenges)
    rules_file.write_text(content)
    with pytest.raises(errors.IssuerRulesUnusableError) as caught:
        login(pki["org_policy"], settings, challenges)
    assert caught.value.status == 503
    assert "uscc-order.json" in caught.value.detail
    rules_file.write_text(json.dumps({issuer: {"policies": [ORG_POLICY]}}))
    assert login(pki["org_policy"], settings, challenges).uscc == USCC


# --- describe -----------------------------------------------------------------------------------


def test_describe(pki):
    leaf = pki["good_rsa"]
    info = describe(leaf.der)
    assert info["uscc"] == USCC
    assert info["org_name"] == ORG_NAME
    assert info["key_alg"] == "RSA-2048"
    assert info["subject"] == leaf.cert.subject.rfc4514_string()
    assert info["not_after"].endswith("Z") and info["not_before"] < info["not_after"]
    assert describe(pki["wrong_check"].der)["uscc"] is None
    assert info["policies"] is None and info["eku"] is None


def test_describe_shows_what_an_issuers_entry_can_require(pki):
    assert describe(pki["org_policy"].der)["policies"] == ORG_POLICY
    assert describe(pki["org_eku"].der)["eku"] == ",".join(sorted([CLIENT_AUTH, ORG_EKU]))
    assert describe(pki["uscc_serial"].der)["uscc"] is None  # the default order
    assert describe(pki["uscc_serial"].der, uscc_order=["serialNumber"])["uscc"] == USCC
    assert describe(pki["good_sm2"].der)["key_alg"] == "SM2"
    with pytest.raises(errors.MalformedResponseError):
        describe(b"junk")


def test_validation_works_inside_a_running_event_loop():
    """An async server (or Playwright's sync API in the same thread) keeps a loop running."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from idp.auth.cert.validate import run_async

    async def inner() -> int:
        return 7

    async def outer() -> int:
        return run_async(inner())

    # Its own thread: this test's thread may itself run a loop (the browser tests' Playwright).
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(asyncio.run, outer()).result() == 7
