"""The resource owner Authlib hands around, and how a stored code or token finds it again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from idp.identity.eligibility import still_eligible
from idp.identity.models import Identity
from idp.identity.principal import Principal
from idp.oidc.models import Client, client_in_session
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
        cls, principal: Principal, identity: Identity, *, client: Client | None, **login: Any
    ) -> AuthorizedUser:
        """The principal as ``client`` sees it (its ``sub`` is pairwise where registered so)."""
        account_id = principal.account.id if principal.account is not None else None
        return cls(
            subject=subject_for(client, principal.subject),
            name=principal.name,
            phone=principal.phone,
            account_id=account_id,
            identity=identity,
            **login,
        )

    def get_user_id(self) -> str:
        return self.subject


def user_for(session: Session, row: Any) -> AuthorizedUser | None:
    """The owner of a stored code or token (same columns), or None when it may no longer act
    as that identity: operator membership deleted or disabled, password change pending,
    password or phone changed since, org identity no longer registered for the client."""
    identity: Identity | None = row.identity
    if identity is None:
        return None
    principal = still_eligible(
        session,
        identity,
        account_id=row.account_id,
        client_id=row.client_id,
        credential_version=row.credential_version,
    )
    if principal is None:
        return None
    return AuthorizedUser.of(
        principal,
        identity,
        client=client_in_session(session, row.client_id),
        sid=row.sid,
        auth_time=row.auth_time.timestamp() if row.auth_time else None,
        amr=tuple(row.amr),
        acr=getattr(row, "acr", None),
        credential_version=row.credential_version,
    )
