"""Platform admins: people who run the provider itself (not an organisation's admin, not an
operator). They log in with a username, a password and a TOTP code (docs/admin.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, created_at, intpk


class PlatformAdmin(Base):
    """``totp_secret`` is set at the first login and only trusted once ``totp_confirmed``;
    ``recovery_codes`` holds the SHA-256 digests of the unused recovery codes."""

    __tablename__ = "platform_admin"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_confirmed: Mapped[bool] = mapped_column(default=False)
    recovery_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[created_at]
