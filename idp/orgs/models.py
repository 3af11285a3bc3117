from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from flask_babel import lazy_gettext as _l
from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import Base, created_at, intpk

if TYPE_CHECKING:
    from idp.auth.models import Account


class OrgType(enum.StrEnum):
    """The identities a third-party professional institution can hold (DESIGN.md §3a)."""

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


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class Role(enum.StrEnum):
    ORG_ADMIN = "org_admin"
    OPERATOR = "operator"


class Organisation(Base):
    """One organisation per unified social credit code."""

    __tablename__ = "organisation"

    id: Mapped[intpk]
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[created_at]

    identities: Mapped[list[OrgIdentity]] = relationship(
        back_populates="org", order_by="OrgIdentity.id", cascade="all, delete-orphan"
    )


class OrgIdentity(Base):
    """An organisation acting as one org type (e.g. 审计单位)."""

    __tablename__ = "org_identity"
    __table_args__ = (UniqueConstraint("org_id", "org_type"),)

    id: Mapped[intpk]
    org_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    org_type: Mapped[OrgType] = mapped_column(
        Enum(OrgType, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[created_at]

    org: Mapped[Organisation] = relationship(back_populates="identities")


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
        Enum(
            MembershipStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=MembershipStatus.ACTIVE,
    )
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[created_at]

    account: Mapped[Account] = relationship(back_populates="memberships")
    org: Mapped[Organisation] = relationship()
