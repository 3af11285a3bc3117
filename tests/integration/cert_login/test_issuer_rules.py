"""Certificate login through the pages when the trust directory gives the issuing CA an entry:
its personal and employee certificates are refused with 「该证书不是机构证书」, even when they
carry the organisation's code; its organisation certificates log in."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from idp import db
from idp.audit.models import AuditEvent
from idp.identity.models import Organisation, OrgCertificate
from tests.integration.cert_login.test_cert_login import cert_login, register_org
from tests.pki import ORG_POLICY, TestPki, shared_pki

RULES_FILE = "uscc-order.json"


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return shared_pki()


@pytest.fixture
def trust_dir(pki, tmp_path):
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    return pki.write_trust_dir(tmp_path / "trust", rules={issuer: {"policies": [ORG_POLICY]}})


@pytest.fixture
def settings_overrides(trust_dir):
    return {"trust_dir": trust_dir}


def count(model) -> int:
    return db.session().scalar(select(func.count()).select_from(model))


def failures() -> list[str]:
    events = select(AuditEvent).where(AuditEvent.action == "auth.cert_login_failed")
    return [event.result for event in db.session().scalars(events)]


@pytest.mark.parametrize("leaf", ["employee", "good_rsa", "org_eku"])
def test_a_certificate_without_the_issuers_policy_is_no_organisation_certificate(
    client, pki, rp, leaf
):
    register_org(rp, "audit")
    response, _signed, _token = cert_login(client, pki, leaf)
    assert response.status_code == 400
    assert "该证书不是机构证书" in response.text
    assert "idp_session=" not in response.headers.get("Set-Cookie", "")
    assert count(OrgCertificate) == 0
    assert failures() == ["cert_not_organisation"]
    assert client.get("/portal").status_code == 302  # nobody is logged in


def test_an_organisation_certificate_of_that_issuer_logs_in(client, pki):
    response, _signed, _token = cert_login(client, pki, "org_policy")
    assert response.status_code == 302
    assert response.headers["Location"] == "/register"


def test_a_broken_rules_file_refuses_logins_until_it_is_fixed(client, pki, trust_dir):
    (trust_dir / RULES_FILE).write_text('{"CN=A": {"policy": ["1.2.3"]}}')
    response, _signed, _token = cert_login(client, pki, "org_policy")
    assert response.status_code == 503
    assert "证书登录暂不可用，请联系平台管理员" in response.text
    assert "idp_session=" not in response.headers.get("Set-Cookie", "")
    assert failures() == ["cert_issuer_rules_unusable"]
    issuer = pki.intermediate.cert.subject.rfc4514_string()
    (trust_dir / RULES_FILE).write_text(json.dumps({issuer: {"policies": [ORG_POLICY]}}))
    response, _signed, _token = cert_login(client, pki, "org_policy")
    assert response.headers["Location"] == "/register"
    assert count(Organisation) == 0
