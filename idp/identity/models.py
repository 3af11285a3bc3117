"""The identity model: people (accounts), organisations, the identities an organisation holds
(one per org type), their registrations at relying parties, operator memberships, join requests,
legacy accounts and the certificates seen for an organisation (docs/design.md §3a).

This package imports no domain (auth, oidc, orgs, portal): they all build on it."""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Dialect,
    Enum,
    ForeignKey,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import Base, created_at, intpk

ID_MAX = 2**31 - 1  # ids are 32-bit integers in every supported database


def new_subject() -> str:
    """A stable, non-reassignable subject identifier that reveals nothing (OIDC Core §2)."""
    return secrets.token_urlsafe(16)


def _enum_column(values: type[enum.StrEnum]) -> Enum:
    """A string column holding the enum's values (portable: no native database enum)."""
    return Enum(
        values, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
    )


class OrgType(enum.StrEnum):
    """The identities a third-party professional institution can hold (docs/design.md §3a)."""

    AUDIT = "audit"
    COST_CONSULTING = "cost_consulting"
    BOOKKEEPING = "bookkeeping"

    @property
    def label(self) -> str:
        return str(ORG_TYPE_LABELS[self])


ORG_TYPE_LABELS = {
    OrgType.AUDIT: _l("审计单位"),
    OrgType.COST_CONSULTING: _l("工程造价咨询单位"),
    OrgType.BOOKKEEPING: _l("代理记账公司"),
}
ORG_TYPES = tuple(t.value for t in OrgType)  # every org type, in the order above


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class Role(enum.StrEnum):
    ORG_ADMIN = "org_admin"
    OPERATOR = "operator"


class Account(Base):
    """A person who logs in with phone + password + SMS code.

    ``credential_version`` goes up whenever the password or the phone changes. Login sessions,
    codes and tokens carry the version they were opened with, and one older than the account's
    no longer acts (``eligibility.still_eligible``, ``idp.auth.session.current``)."""

    __tablename__ = "account"

    id: Mapped[intpk]
    subject: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(default=True)
    password_changed_at: Mapped[datetime | None]
    credential_version: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[created_at]

    memberships: Mapped[list[Membership]] = relationship(back_populates="account")


class Organisation(Base):
    """One organisation per unified social credit code."""

    __tablename__ = "organisation"

    id: Mapped[intpk]
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The org admin's subject: whoever proves a certificate with this USCC acts as it.
    admin_subject: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    contact_person: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(20), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[created_at]
    # 暂停使用 by a platform admin: none of its people may log in or act for it while set
    # (idp.identity.eligibility); the reason and who decided, for the console and the audit.
    suspended_at: Mapped[datetime | None]
    # When the last suspension ended every login session of the org's admin and operators: a
    # session begun before it is over, also after a reactivation (kept when that clears the rest).
    sessions_ended_at: Mapped[datetime | None]
    suspension_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    suspended_by: Mapped[str] = mapped_column(String(120), default="", server_default="")

    identities: Mapped[list[OrgIdentity]] = relationship(
        back_populates="org", order_by="OrgIdentity.id", cascade="all, delete-orphan"
    )

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


class OrgIdentity(Base):
    """An organisation acting as one org type (e.g. 审计单位)."""

    __tablename__ = "org_identity"
    __table_args__ = (UniqueConstraint("org_id", "org_type"),)

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    org_type: Mapped[OrgType] = mapped_column(_enum_column(OrgType))
    created_at: Mapped[created_at]

    org: Mapped[Organisation] = relationship(back_populates="identities")
    registrations: Mapped[list[IdentityRegistration]] = relationship(
        back_populates="identity", cascade="all, delete-orphan"
    )


class IdentityRegistration(Base):
    """An org identity registered for one relying party, possibly bound to its legacy account."""

    __tablename__ = "identity_registration"
    __table_args__ = (UniqueConstraint("identity_id", "client_id"),)

    id: Mapped[intpk]
    identity_id: Mapped[int] = mapped_column(
        ForeignKey("org_identity.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    legacy_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("legacy_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[created_at]

    identity: Mapped[OrgIdentity] = relationship(back_populates="registrations")
    legacy_account: Mapped[LegacyAccount | None] = relationship()


class LegacyAccount(Base):
    """An account of a relying party's old login (OTP token or key), imported from the RP.

    The secret (TOTP seed in base32, or the legacy key) is sealed at rest (idp.sealing)."""

    __tablename__ = "legacy_account"
    __table_args__ = (UniqueConstraint("client_id", "account_ref"),)

    id: Mapped[intpk]
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    org_type: Mapped[OrgType] = mapped_column(_enum_column(OrgType))
    account_ref: Mapped[str] = mapped_column(String(100))
    secret_kind: Mapped[str] = mapped_column(String(10))  # "totp" or "key"
    secret_sealed: Mapped[str] = mapped_column(Text)
    bound_identity_id: Mapped[int | None] = mapped_column(
        ForeignKey("org_identity.id", ondelete="SET NULL")
    )
    bound_at: Mapped[datetime | None]
    created_at: Mapped[created_at]


class OrgCertificate(Base):
    """A certificate that has logged in for an organisation (UKeys are renewed over time)."""

    __tablename__ = "org_certificate"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    issuer: Mapped[str] = mapped_column(String(500))
    serial: Mapped[str] = mapped_column(String(80))
    not_after: Mapped[datetime]
    first_seen: Mapped[created_at]
    last_used: Mapped[datetime | None]


class Membership(Base):
    """A person's operator account in one organisation, with its own status."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("account_id", "org_id"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[MembershipStatus] = mapped_column(
        _enum_column(MembershipStatus),
        default=MembershipStatus.ACTIVE,
    )
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]  # soft delete: the row stays for the audit trail

    account: Mapped[Account] = relationship(back_populates="memberships")
    org: Mapped[Organisation] = relationship()


class JoinRequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class JoinRequest(Base):
    """用户审核: a person asks to become an operator of an org; the org admin decides."""

    __tablename__ = "join_request"

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[JoinRequestStatus] = mapped_column(
        _enum_column(JoinRequestStatus),
        default=JoinRequestStatus.PENDING,
    )
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str] = mapped_column(String(120), default="")


@dataclass(frozen=True)
class Identity:
    """The (organisation identity, role) pair a user enters a relying party as; stored with
    codes, tokens and pending requests in its JSON form."""

    org_id: int
    uscc: str
    org_name: str
    org_type: OrgType
    role: Role
    legacy_account: str | None = None  # the org's bound account at this relying party

    @property
    def key(self) -> str:
        """How a form names this identity (the role choice page)."""
        return f"{self.org_id}:{self.org_type.value}:{self.role.value}"

    @property
    def label(self) -> str:
        return f"{self.org_name} · {self.org_type.label}"

    def to_json(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "uscc": self.uscc,
            "org_name": self.org_name,
            "org_type": self.org_type.value,
            "role": self.role.value,
            "legacy_account": self.legacy_account,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Identity | None:
        """The identity stored as ``to_json()``; None for no identity (a client's own token)."""
        if not data:
            return None
        return cls(
            org_id=int(data["org_id"]),
            uscc=str(data["uscc"]),
            org_name=str(data["org_name"]),
            org_type=OrgType(data["org_type"]),
            role=Role(data["role"]),
            legacy_account=data.get("legacy_account"),
        )


class IdentityJSON(TypeDecorator[Identity]):
    """An ``Identity`` kept in a JSON column (codes and tokens); ``{}`` when there is none (a
    client's own token)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Identity | None, dialect: Dialect) -> dict[str, Any]:
        return value.to_json() if value is not None else {}

    def process_result_value(self, value: Any, dialect: Dialect) -> Identity | None:
        return Identity.from_json(value)
