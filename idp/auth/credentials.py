"""What a credential change ends: a new password or a new phone ends every login session, code
and token opened with the old one.

The account's ``credential_version`` goes up in the same transaction as the change; everything
carrying an older version stops acting at its next use (``idp.auth.session.current``,
``idp.identity.eligibility.still_eligible``), which no request in flight can undo. The token
layer sits above this package, so it hears of the change through ``changed`` and revokes the
account's tokens in the same transaction, which keeps the database's token state truthful.
"""

from __future__ import annotations

from blinker import Namespace
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.identity.models import Account

signals = Namespace()
# Sent by the account, with the request's ``session``, once its version went up; a receiver
# returns how many things it ended (idp.oidc revokes the account's tokens).
changed = signals.signal("credentials-changed")


def credentials_changed(session: Session, account: Account) -> tuple[int, int]:
    """Raise the account's credential version (one atomic UPDATE, so concurrent changes get
    distinct versions) and end what the old credentials opened; returns the new version and
    how many tokens were revoked."""
    version: int = session.execute(
        update(Account)
        .where(Account.id == account.id)
        .values(credential_version=Account.credential_version + 1)
        .returning(Account.credential_version)
    ).scalar_one()
    account.credential_version = version
    results = changed.send(account, session=session)
    return version, sum(int(ended) for _receiver, ended in results)
