"""The organisations as the platform sees them (the console's 机构管理 and ``idp orgs list |
show``): a search by USCC or name, and one organisation in full — its identities and their
registrations at relying parties, operators (phones masked), certificates seen, legacy
accounts, state and recent audit events. Nothing here changes anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from idp.audit.queries import AuditEventView, list_org_events
from idp.errors import IdpError
from idp.identity.models import (
    IdentityRegistration,
    LegacyAccount,
    Membership,
    MembershipStatus,
    Organisation,
    OrgCertificate,
    OrgIdentity,
)
from idp.oidc.clients import list_clients
from idp.orgs.operators import OperatorView, list_operators
from idp.orgs.suspension import get_org
from idp.pagination import Page, paginate

MAX_QUERY = 100
OPERATORS_SHOWN = 100
EVENTS_SHOWN = 20


class OrgSearchError(IdpError):
    code = "invalid_org_search"
    field = "q"


@dataclass(frozen=True)
class OrgSummary:
    """One line of the list."""

    id: int
    uscc: str
    name: str
    org_types: list[str]
    suspended: bool
    operators: int
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "uscc": self.uscc,
            "name": self.name,
            "types": self.org_types,
            "state": "suspended" if self.suspended else "active",
            "operators": self.operators,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }


def search_orgs(
    session: Session, *, query: str = "", page: int = 1, per_page: int = 20
) -> Page[OrgSummary]:
    """Organisations whose USCC or name contains ``query`` (any case), newest first."""
    query = query.strip() if isinstance(query, str) else ""
    if len(query) > MAX_QUERY:
        raise OrgSearchError(_("查询条件不能超过 %(n)d 字", n=MAX_QUERY))
    stmt = select(Organisation).order_by(Organisation.created_at.desc(), Organisation.id.desc())
    if query:
        stmt = stmt.where(
            or_(
                Organisation.uscc.contains(query.upper(), autoescape=True),
                func.lower(Organisation.name).contains(query.lower(), autoescape=True),
            )
        )
    rows, total = paginate(session, stmt, page=page, per_page=per_page)
    orgs = [org for (org,) in rows]
    counts = operator_counts(session, [org.id for org in orgs])
    items = [
        OrgSummary(
            id=org.id,
            uscc=org.uscc,
            name=org.name,
            org_types=[i.org_type.value for i in org.identities],
            suspended=org.suspended,
            operators=counts.get(org.id, 0),
            created_at=org.created_at,
        )
        for org in orgs
    ]
    return Page(items=items, page=page, per_page=per_page, total=total)


def operator_counts(session: Session, org_ids: list[int]) -> dict[int, int]:
    """How many operators (not deleted) each organisation has."""
    if not org_ids:
        return {}
    rows = session.execute(
        select(Membership.org_id, func.count())
        .where(Membership.org_id.in_(org_ids), Membership.status != MembershipStatus.DELETED)
        .group_by(Membership.org_id)
    )
    return {org_id: int(count) for org_id, count in rows}


@dataclass(frozen=True)
class RegistrationView:
    client_id: str
    client_name: str
    legacy_account: str | None
    created_at: datetime


@dataclass(frozen=True)
class IdentityView:
    org_type: str
    created_at: datetime
    registrations: list[RegistrationView]


@dataclass(frozen=True)
class LegacyView:
    """A legacy account imported for the org's USCC (its secret is never shown)."""

    client_id: str
    client_name: str
    org_type: str
    account_ref: str
    secret_kind: str
    bound_at: datetime | None


@dataclass(frozen=True)
class OrgDetail:
    org: Organisation
    identities: list[IdentityView]
    operators: Page[OperatorView]
    certificates: list[OrgCertificate]
    legacy_accounts: list[LegacyView]
    events: Page[AuditEventView]

    def to_json(self) -> dict[str, Any]:
        """``idp orgs show``: the same facts, phones masked, no secrets."""
        org = self.org
        return {
            "uscc": org.uscc,
            "name": org.name,
            "state": "suspended" if org.suspended else "active",
            "suspended_at": _iso(org.suspended_at),
            "suspension_reason": org.suspension_reason or None,
            "suspended_by": org.suspended_by or None,
            "created_at": _iso(org.created_at),
            "identities": [
                {
                    "type": identity.org_type,
                    "registrations": [
                        {"client_id": r.client_id, "legacy_account": r.legacy_account}
                        for r in identity.registrations
                    ],
                }
                for identity in self.identities
            ],
            "operators": [
                {"name": o.name, "phone": o.masked_phone, "status": o.status}
                for o in self.operators.items
            ],
            "operators_total": self.operators.total,
            "certificates": [
                {
                    "subject": c.subject,
                    "serial": c.serial,
                    "not_after": _iso(c.not_after),
                    "last_used": _iso(c.last_used),
                }
                for c in self.certificates
            ],
            "legacy_accounts": [
                {
                    "client_id": legacy.client_id,
                    "type": legacy.org_type,
                    "account": legacy.account_ref,
                    "kind": legacy.secret_kind,
                    "bound_at": _iso(legacy.bound_at),
                }
                for legacy in self.legacy_accounts
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def org_detail(session: Session, uscc: str) -> OrgDetail:
    """Everything the platform knows of one organisation; 404 for an unknown USCC."""
    org = get_org(session, uscc)
    names = {client.client_id: client.name for client in list_clients(session)}
    return OrgDetail(
        org=org,
        identities=identity_views(session, org, names),
        operators=list_operators(session, org, status="", per_page=OPERATORS_SHOWN),
        certificates=list(
            session.scalars(
                select(OrgCertificate)
                .where(OrgCertificate.org_id == org.id)
                .order_by(OrgCertificate.first_seen.desc())
            )
        ),
        legacy_accounts=legacy_views(session, org, names),
        events=list_org_events(session, org.id, per_page=EVENTS_SHOWN),
    )


def identity_views(
    session: Session, org: Organisation, names: dict[str, str]
) -> list[IdentityView]:
    rows = session.execute(
        select(IdentityRegistration, LegacyAccount.account_ref)
        .join(OrgIdentity, OrgIdentity.id == IdentityRegistration.identity_id)
        .outerjoin(LegacyAccount, LegacyAccount.id == IdentityRegistration.legacy_account_id)
        .where(OrgIdentity.org_id == org.id)
        .order_by(IdentityRegistration.id)
    )
    by_identity: dict[int, list[RegistrationView]] = {}
    for registration, legacy_ref in rows:
        by_identity.setdefault(registration.identity_id, []).append(
            RegistrationView(
                client_id=registration.client_id,
                client_name=names.get(registration.client_id, registration.client_id),
                legacy_account=legacy_ref,
                created_at=registration.created_at,
            )
        )
    return [
        IdentityView(
            org_type=identity.org_type.value,
            created_at=identity.created_at,
            registrations=by_identity.get(identity.id, []),
        )
        for identity in org.identities
    ]


def legacy_views(session: Session, org: Organisation, names: dict[str, str]) -> list[LegacyView]:
    rows = session.scalars(
        select(LegacyAccount)
        .where(LegacyAccount.uscc == org.uscc)
        .order_by(LegacyAccount.client_id, LegacyAccount.account_ref)
    )
    return [
        LegacyView(
            client_id=row.client_id,
            client_name=names.get(row.client_id, row.client_id),
            org_type=row.org_type.value,
            account_ref=row.account_ref,
            secret_kind=row.secret_kind,
            bound_at=row.bound_at,
        )
        for row in rows
    ]
