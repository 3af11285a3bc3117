"""Every mapped model, imported in one place for Alembic and the mapper registry."""

from idp.admin.models import PlatformAdmin
from idp.audit.models import AuditEvent
from idp.identity.models import (
    Account,
    IdentityRegistration,
    JoinRequest,
    LegacyAccount,
    Membership,
    Organisation,
    OrgCertificate,
    OrgIdentity,
)
from idp.oidc.models import (
    AuthorizationCode,
    Client,
    ConsentGrant,
    InitialAccessToken,
    RegistrationAccessToken,
    Token,
    TokenFamily,
)
from idp.store.sql import StoreEntry

__all__ = [
    "Account",
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "ConsentGrant",
    "IdentityRegistration",
    "InitialAccessToken",
    "JoinRequest",
    "LegacyAccount",
    "Membership",
    "OrgCertificate",
    "OrgIdentity",
    "Organisation",
    "PlatformAdmin",
    "RegistrationAccessToken",
    "StoreEntry",
    "Token",
    "TokenFamily",
]
