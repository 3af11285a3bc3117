"""The demo UKey of ``make run`` (devtools/pki.py) logs in with the provider's defaults: its
organisation certificate holds the USCC in the organisation-certificate extension."""

from __future__ import annotations

import secrets

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devtools.demo import DEMO_ORG
from devtools.pki import ensure_demo_pki
from idp.auth.cert.verify import verify_login
from idp.config import Settings
from tests.pki import ORIGIN, Leaf, signed_login


def test_the_demo_organisation_certificate_logs_in_with_the_defaults(tmp_path):
    trust = tmp_path / "trust"
    demo = ensure_demo_pki(
        tmp_path / "instance", trust, uscc=DEMO_ORG["uscc"], org_name=DEMO_ORG["name"]
    )
    cert = x509.load_pem_x509_certificate((demo / "org.pem").read_bytes())
    key = serialization.load_pem_private_key((demo / "org.key").read_bytes(), password=None)
    nonce = secrets.token_urlsafe(32)
    response = signed_login(Leaf("demo", cert, key, chain=[], alg="ES256"), nonce=nonce)
    settings = Settings.from_env({}, instance_dir=tmp_path / "instance", trust_dir=trust)

    verified = verify_login(
        **response.login_kwargs(),
        expected_origin=ORIGIN,
        consume_challenge=lambda presented: presented == nonce,
        settings=settings,
    )

    assert verified.uscc == DEMO_ORG["uscc"]
    assert verified.org_name == DEMO_ORG["name"]
