"""暂停使用: a platform admin suspends an organisation, and later reactivates it.

Suspension ends at once everything that acts for the organisation: every code and token of its
admin and of its operators for it (``idp.oidc.tokens.revoke_for_org``, which also queues the
back-channel logout notices), and every login session of its admin and its operators (begun
before ``sessions_ended_at``: ``idp.identity.eligibility.ended_by_suspension``). While it is
suspended nobody logs in for it: the UKey login and the login of an operator with no other
organisation are refused with the suspension's message, and no code or token is granted.
Reactivation lets its people log in again; what the suspension ended stays ended.

The console (``idp.admin.orgs``) and the command line (``idp orgs suspend|reactivate``) call
these functions; each change and each refusal is an audit event of the organisation.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from idp import audit
from idp.db import utcnow
from idp.errors import IdpError, NotFoundError
from idp.identity.lookup import find_org
from idp.identity.models import Organisation
from idp.oidc.tokens import revoke_for_org
from idp.orgs.operators import failures_audited

SUSPENDED = "orgs.org_suspended"
REACTIVATED = "orgs.org_reactivated"
MAX_REASON = 300
USCC_LENGTH = 18


class OrgNotFoundError(NotFoundError):
    code = "org_not_found"
    message = _l("没有该统一社会信用代码的机构")


class SuspensionError(IdpError):
    """A refused suspension or reactivation; ``field`` names the form field."""

    code = "invalid_suspension"
    field = "reason"


class ReasonRequiredError(SuspensionError):
    code = "suspension_reason_required"
    message = _l("请填写暂停原因")


class AlreadySuspendedError(SuspensionError):
    code = "org_already_suspended"
    status = 409
    message = _l("该机构已处于暂停使用状态")
    field = ""


class NotSuspendedError(SuspensionError):
    code = "org_not_suspended"
    status = 409
    message = _l("该机构未被暂停使用，无需恢复")
    field = ""


@dataclass(frozen=True)
class SuspensionResult:
    """What a suspension or reactivation did (the counts are 0 for a reactivation)."""

    org: Organisation
    tokens_revoked: int
    notices_queued: int


def get_org(session: Session, uscc: str) -> Organisation:
    """The organisation with this USCC (any case, spaces around ignored); 404 otherwise."""
    cleaned = uscc.strip().upper() if isinstance(uscc, str) else ""
    org = find_org(session, cleaned) if len(cleaned) == USCC_LENGTH else None
    if org is None:
        raise OrgNotFoundError()
    return org


def org_target(org: Organisation) -> str:
    """How audit events name the organisation (no personal data: a company and its code)."""
    return f"org:{org.id} {org.name[:100]} {org.uscc}"


def clean_reason(reason: str | None, *, required: bool) -> str:
    """The reason as recorded: trimmed, at most 300 characters, no control characters."""
    text = " ".join(reason.split()) if isinstance(reason, str) else ""
    if not text and required:
        raise ReasonRequiredError()
    if len(text) > MAX_REASON:
        raise SuspensionError(_("原因不能超过 %(n)d 字", n=MAX_REASON))
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise SuspensionError(_("原因含有无效字符"))
    return text


def suspend_org(session: Session, uscc: str, *, reason: str, actor: str) -> SuspensionResult:
    """Suspend the organisation: its people's sessions, codes and tokens end now, the relying
    parties are told (back-channel logout), and nobody logs in for it until it is reactivated."""
    org = get_org(session, uscc)
    with failures_audited(SUSPENDED, actor=actor, target=org_target(org), org_id=org.id):
        reason = clean_reason(reason, required=True)
        if org.suspended:
            raise AlreadySuspendedError()
    now = utcnow()
    org.suspended_at = org.sessions_ended_at = now
    org.suspension_reason, org.suspended_by = reason, actor[:120]
    revoked, queued = revoke_for_org(session, org.id)
    audit.record(
        SUSPENDED,
        actor=actor,
        target=org_target(org),
        org_id=org.id,
        details={"reason": reason, "tokens_revoked": str(revoked), "logout_notices": str(queued)},
    )
    return SuspensionResult(org=org, tokens_revoked=revoked, notices_queued=queued)


def reactivate_org(
    session: Session, uscc: str, *, reason: str = "", actor: str
) -> SuspensionResult:
    """Lift the suspension: the org's admin and operators may log in again (sessions, codes
    and tokens the suspension ended stay ended). The reason is optional."""
    org = get_org(session, uscc)
    with failures_audited(REACTIVATED, actor=actor, target=org_target(org), org_id=org.id):
        reason = clean_reason(reason, required=False)
        if not org.suspended:
            raise NotSuspendedError()
    org.suspended_at = None
    org.suspension_reason, org.suspended_by = "", ""
    audit.record(
        REACTIVATED,
        actor=actor,
        target=org_target(org),
        org_id=org.id,
        details={"reason": reason} if reason else {},
    )
    return SuspensionResult(org=org, tokens_revoked=0, notices_queued=0)
