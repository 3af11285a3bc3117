"""Certificate (UKey) login, the provider's side of docs/ukey-protocol.md: one-time challenges
bound to the browser, verification through ``idp.auth.cert``, and the org admin session."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict
from datetime import timedelta

from flask import session as browser_session
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit
from idp.auth import session as login_session
from idp.auth.cert.errors import CertificateLoginError, OrgSuspendedCertificateError
from idp.auth.cert.payload import origin_of
from idp.auth.cert.verify import VerifiedCertificate, decode_login_form, verify_login
from idp.config import settings
from idp.db import utcnow
from idp.identity.models import Organisation, OrgCertificate
from idp.store import store

CHALLENGE_TTL = timedelta(seconds=120)
UKEY_AMR = ["hwk", "sc"]  # RFC 8176: hardware-secured key, smart card
UKEY_ACR = "urn:idp:acr:ukey"
PREAUTH_KEY = "preauth"  # key of the browser-binding value in the (signed) Flask session


def _preauth_id() -> str:
    """A random value in this browser's signed session cookie; challenges are bound to it."""
    if PREAUTH_KEY not in browser_session:
        browser_session[PREAUTH_KEY] = secrets.token_urlsafe(16)
    return str(browser_session[PREAUTH_KEY])


def issue_challenge() -> str:
    challenge = secrets.token_urlsafe(32)
    store().put(f"cert-challenge:{challenge}", _preauth_id().encode(), CHALLENGE_TTL)
    return challenge


def consume_challenge(challenge: str) -> bool:
    """Single use: the value is removed whoever presents it; only this browser's counts."""
    owner = store().consume(f"cert-challenge:{challenge}")
    return owner is not None and hmac.compare_digest(owner.decode(), _preauth_id())


def log_in(
    session: Session, form: dict[str, str], *, started_for: str = ""
) -> login_session.LoginSession:
    """Verify the signed challenge and start an org admin session; raise on any failure."""
    try:
        signed = decode_login_form(
            **{
                name: form.get(name, "")
                for name in ("payload", "signature", "alg", "certificate", "chain")
            }
        )
        verified = verify_login(
            **asdict(signed),
            expected_origin=origin_of(settings().issuer),
            consume_challenge=consume_challenge,
            settings=settings(),
        )
    except CertificateLoginError as error:
        audit.record("auth.cert_login_failed", actor="certificate", result=error.code)
        raise
    org = session.scalar(select(Organisation).where(Organisation.uscc == verified.uscc))
    if org is not None and org.suspended:
        audit.record(
            "auth.cert_login_failed",
            actor=f"uscc:{verified.uscc}",
            target=verified.fingerprint_sha256_hex[:16],
            result=OrgSuspendedCertificateError.code,
            org_id=org.id,
        )
        raise OrgSuspendedCertificateError()
    if org is not None:
        remember_certificate(session, org, verified)
    audit.record(
        "auth.cert_login_succeeded",
        actor=f"uscc:{verified.uscc}",
        target=verified.fingerprint_sha256_hex[:16],
        org_id=org.id if org else None,
    )
    return login_session.start(
        account_id=None,
        kind="org_admin",
        amr=UKEY_AMR,
        acr=UKEY_ACR,
        org_id=org.id if org else None,
        certificate=certificate_facts(verified),
        not_after=verified.not_after,
        started_for=started_for,
    )


def certificate_facts(verified: VerifiedCertificate) -> dict[str, str]:
    facts = {k: str(v) for k, v in asdict(verified).items()}
    facts["fingerprint"] = verified.fingerprint_sha256_hex
    return facts


def remember_certificate(
    session: Session, org: Organisation, verified: VerifiedCertificate
) -> None:
    """Keep which certificates have acted for the org (UKeys are renewed over the years)."""
    row = session.scalar(
        select(OrgCertificate).where(OrgCertificate.fingerprint == verified.fingerprint_sha256_hex)
    )
    if row is None:
        row = OrgCertificate(
            org_id=org.id,
            fingerprint=verified.fingerprint_sha256_hex,
            subject=verified.subject[:500],
            issuer=verified.issuer[:500],
            serial=verified.serial_hex[:80],
            not_after=verified.not_after,
        )
        session.add(row)
    row.last_used = utcnow()
