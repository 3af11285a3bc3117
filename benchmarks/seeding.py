"""Seed the provider under test: the benchmark client, one organisation and a pool of operators,
and with ``--scale`` the bulk data (more clients, operators and stored tokens).

Run by ``benchmarks.servers`` as ``python -m benchmarks.seeding SPEC`` in the provider's
environment (its ``IDP_*`` variables) after ``idp db upgrade``; prints the client as JSON. The
client and the organisation go through the provider's service functions; the bulk rows are
plain INSERTs of many rows each (SQLAlchemy core), all operators sharing one argon2id hash of
the benchmark password so seeding 100,000 of them takes seconds, not hours.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, text

BATCH = 10_000
USCC = "91310000MA1K000019"


@dataclass(frozen=True)
class SeedSpec:
    """What to seed; ``operators`` phones are ``phone_prefix`` + a zero-padded number."""

    redirect_uri: str
    password: str
    phone_prefix: str
    operators: int
    extra_clients: int = 0
    tokens: int = 0

    def phone(self, number: int) -> str:
        return f"{self.phone_prefix}{number:0{11 - len(self.phone_prefix)}d}"


def insert_batches(
    conn: Connection, model: type[Any], count: int, row: Callable[[int], dict[str, Any]]
) -> None:
    """INSERT ``count`` rows of ``model``'s table made by ``row(i)``, ``BATCH`` at a time."""
    for start in range(0, count, BATCH):
        conn.execute(insert(model), [row(i) for i in range(start, min(start + BATCH, count))])


def seed(spec: SeedSpec) -> dict[str, str]:
    from idp import create_app, db
    from idp.auth.passwords import hash_password
    from idp.identity.models import Account, Identity, Membership, MembershipStatus, Role
    from idp.oidc.clients import register_client
    from idp.oidc.models import Client, Token, digest
    from idp.orgs.registration import add_org

    app = create_app()
    with app.app_context():
        session = db.session()
        metadata = {
            "client_name": "benchmark RP",
            "redirect_uris": [spec.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "openid profile phone",
            "require_pkce": True,
            "introspection_allowed": True,
        }
        client, secret = register_client(session, metadata, actor="benchmark")
        org = add_org(session, uscc=USCC, name="压测审计事务所", org_type="audit")
        identity = Identity(
            org_id=org.id,
            uscc=org.uscc,
            org_name=org.name,
            org_type=org.identities[0].org_type,
            role=Role.OPERATOR,
            legacy_account=None,
        )
        session.commit()
        shared_hash = hash_password(spec.password)
        now = db.utcnow()
        conn = session.connection()
        insert_batches(
            conn,
            Account,
            spec.operators,
            lambda i: {
                "subject": secrets.token_urlsafe(16),
                "phone": spec.phone(i),
                "name": f"压测{i}",
                "password_hash": shared_hash,
                "must_change_password": False,
                "password_changed_at": now,
                "credential_version": 0,
                "created_at": now,
            },
        )
        account_ids = list(session.scalars(select(Account.id).order_by(Account.id)))
        insert_batches(
            conn,
            Membership,
            len(account_ids),
            lambda i: {
                "account_id": account_ids[i],
                "org_id": org.id,
                "status": MembershipStatus.ACTIVE,
                "created_by": "benchmark",
                "created_at": now,
            },
        )
        insert_batches(
            conn,
            Client,
            spec.extra_clients,
            lambda i: {
                "client_id": f"bulk-{i}-{secrets.token_hex(8)}",
                "secret_hash": digest(secrets.token_urlsafe(32)),
                "client_metadata": {**client.client_metadata, "client_name": f"bulk RP {i}"},
                "created_at": now,
            },
        )
        client_ids = [client.client_id, *session.scalars(select(Client.client_id))]

        def token_row(i: int) -> dict[str, Any]:
            return {
                "client_id": client_ids[i % len(client_ids)],
                "account_id": account_ids[i % len(account_ids)],
                "identity": identity,
                "access_token_hash": secrets.token_hex(32),
                "refresh_token_hash": secrets.token_hex(32),
                "scope": "openid profile phone",
                "family_id": secrets.token_hex(16),
                "amr": ["pwd", "sms"],
                "credential_version": 0,
                "issued_at": now,
                "access_expires_at": now + timedelta(minutes=10),
                "refresh_expires_at": now + timedelta(hours=8),
            }

        insert_batches(conn, Token, spec.tokens, token_row)
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))  # statistics as autovacuum would soon have them
        session.commit()
        return {"client_id": client.client_id, "client_secret": secret or ""}


def main(argv: list[str]) -> int:
    spec = SeedSpec(**json.loads(argv[0]))
    print(json.dumps(seed(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
