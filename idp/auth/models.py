from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import Base, created_at, intpk

if TYPE_CHECKING:
    from idp.orgs.models import Membership


def new_subject() -> str:
    """A stable, non-reassignable subject identifier that reveals nothing (OIDC Core §2)."""
    return secrets.token_urlsafe(16)


class Account(Base):
    """A person who logs in with phone + password + SMS code."""

    __tablename__ = "account"

    id: Mapped[intpk]
    subject: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(default=True)
    password_changed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[created_at]

    memberships: Mapped[list[Membership]] = relationship(back_populates="account")
