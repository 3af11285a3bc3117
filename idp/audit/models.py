from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UTCDateTime, intpk, utcnow


class AuditEvent(Base):
    """Who did what to what, when, from where, and with which result."""

    __tablename__ = "audit_event"

    id: Mapped[intpk]
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60), index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    result: Mapped[str] = mapped_column(String(40), default="success")
    ip: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    org_id: Mapped[int | None] = mapped_column(index=True)
    details: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
