"""The resource owner Authlib hands around, and how a stored code or token finds it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from idp.identity.eligibility import (
    NOT_READ,
    Grantee,
    KnownStanding,
    operator_grantee,
    still_eligible,
)
from idp.identity.models import Identity, Role
from idp.oidc.client_cache import protocol_client
from idp.oidc.models import Client
from idp.oidc.presented import PresentedToken
from idp.oidc.subjects import subject_for


@dataclass(frozen=True)
class AuthorizedUser:
    """A principal acting as one identity, with how and when it authenticated."""

    subject: str
    name: str
    phone: str | None
    account_id: int | None
    identity: Identity | None  # None: a client acting for itself
    sid: str | None = None
    auth_time: float | None = None
    amr: tuple[str, ...] = ()
    acr: str | None = None
    credential_version: int = 0  # of the login it comes from (idp.identity.models.Account)

    @classmethod
    def of(
        cls, grantee: Grantee, identity: Identity, *, client: Client | None, **login: Any
    ) -> AuthorizedUser:
        """The grantee as ``client`` sees it (its ``sub`` is pairwise where registered so)."""
        return cls(
            subject=subject_for(client, grantee.subject),
            name=grantee.name,
            phone=grantee.phone,
            account_id=grantee.account_id,
            identity=identity,
            **login,
        )

    def get_user_id(self) -> str:
        return self.subject


def user_for(
    session: Session, row: Any, *, standing: KnownStanding = NOT_READ
) -> AuthorizedUser | None:
    """The owner of a stored code or token (same columns), or None when it may no longer act
    as that identity: operator membership deleted or disabled, password change pending,
    password or phone changed since, org identity no longer registered for the client. A
    presented token brings its operator's standing and its client along; a claimed code or
    token may bring the standing (``standing``, read with the claim)."""
    identity: Identity | None = row.identity
    if identity is None:
        return None
    presented = isinstance(row, PresentedToken)
    if presented:
        standing = row.standing
    if identity.role == Role.OPERATOR and standing is not NOT_READ:
        grantee = operator_grantee(
            standing, account_id=row.account_id, credential_version=row.credential_version
        )
    else:
        grantee = still_eligible(
            session,
            identity,
            account_id=row.account_id,
            client_id=row.client_id,
            credential_version=row.credential_version,
        )
    if grantee is None:
        return None
    return AuthorizedUser.of(
        grantee,
        identity,
        client=row.client if presented else protocol_client(session, row.client_id),
        sid=row.sid,
        auth_time=row.auth_time.timestamp() if row.auth_time else None,
        amr=tuple(row.amr),
        acr=getattr(row, "acr", None),
        credential_version=row.credential_version,
    )
