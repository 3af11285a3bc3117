"""Finding people and organisations by what users type: a phone number, a USCC."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.identity.models import Account, Organisation


def find_account_by_phone(session: Session, phone: str) -> Account | None:
    return session.scalar(select(Account).where(Account.phone == phone))


def find_org(session: Session, uscc: str) -> Organisation | None:
    return session.scalar(select(Organisation).where(Organisation.uscc == uscc.strip().upper()))
