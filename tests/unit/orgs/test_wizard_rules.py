"""Small rules of the registration wizard: the contact phone pattern, who counts as an applicant,
and how legacy account ids appear in the audit trail."""

from __future__ import annotations

import re

import pytest

from idp.auth.session import LoginSession
from idp.identity.models import OrgType
from idp.orgs.forms import CONTACT_PHONE_PATTERN
from idp.orgs.legacy import BindRequest
from idp.orgs.registration import Applicant

PHONE = re.compile(CONTACT_PHONE_PATTERN)


@pytest.mark.parametrize(
    "phone",
    [
        "13800138000",
        "19912345678",
        "021-63211234",
        "02163211234",
        "63211234",
        "0571-8765432",
        "021-63211234-8001",
    ],
)
def test_mobiles_and_landlines_are_contact_phones(phone):
    assert PHONE.match(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "1380013800",
        "12800138000",
        "138001380001",
        "13800138000\n",
        "021-1234",
        "021 63211234",
        "１３８００１３８０００",
        "+8613800138000",
        "0-63211234",
        "00216321123",
    ],
)
def test_other_values_are_not(phone):
    assert not PHONE.match(phone)


def login(kind: str, certificate: dict[str, str] | None) -> LoginSession:
    return LoginSession(
        id="x",
        account_id=None,
        kind=kind,
        amr=[],
        acr="",
        auth_time=0,
        created_at=0,
        certificate=certificate,
    )


def test_an_org_admin_with_a_certificate_is_an_applicant():
    found = Applicant.of(
        login("org_admin", {"uscc": " 91310000ma1k000019 ", "org_name": " 示例公司 "})
    )

    assert found == Applicant(uscc="91310000MA1K000019", org_name="示例公司")
    assert found.actor == "uscc:91310000MA1K000019"


@pytest.mark.parametrize(
    "session",
    [
        None,
        login("operator", {"uscc": "91310000MA1K000019"}),
        login("org_admin", None),
        login("org_admin", {"uscc": ""}),
    ],
)
def test_nobody_else_is(session):
    assert Applicant.of(session) is None


@pytest.mark.parametrize(
    ("ref", "masked"), [("WXZJ-SJ-0001", "WX***01"), ("ABCDEFG", "AB***FG"), ("ABCDEF", "***")]
)
def test_legacy_account_ids_are_masked_in_audit_targets(ref, masked):
    request = BindRequest(org_type=OrgType.AUDIT, client_id="fund", account_ref=ref)

    assert request.masked_ref == masked
