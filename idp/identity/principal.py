"""Who a login session acts as: an operator account, or an organisation's admin (whoever proved
a certificate carrying the organisation's USCC, docs/design.md §3a)."""

from __future__ import annotations

from dataclasses import dataclass

from idp.identity.models import Account, Organisation


@dataclass(frozen=True)
class Principal:
    subject: str  # the OIDC ``sub``
    name: str
    phone: str | None
    account: Account | None  # operators
    org: Organisation | None  # org admins

    @property
    def actor(self) -> str:
        """How audit events name this principal (no personal data)."""
        if self.account is not None:
            return f"account:{self.account.id}"
        return f"org_admin:{self.org.id if self.org else '?'}"

    @property
    def must_change_password(self) -> bool:
        return self.account is not None and self.account.must_change_password


def of_account(account: Account) -> Principal:
    return Principal(
        subject=account.subject, name=account.name, phone=account.phone, account=account, org=None
    )


def of_org_admin(org: Organisation) -> Principal:
    return Principal(subject=org.admin_subject, name=org.name, phone=None, account=None, org=org)
