"""Every mapped model, imported in one place for Alembic and the mapper registry."""

from idp.audit.models import AuditEvent
from idp.auth.models import Account
from idp.oidc.models import AuthorizationCode, Client, Token
from idp.orgs.models import Membership, Organisation, OrgIdentity
from idp.store.sql import StoreEntry

__all__ = [
    "Account",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "Membership",
    "OrgIdentity",
    "Organisation",
    "StoreEntry",
    "Token",
]
