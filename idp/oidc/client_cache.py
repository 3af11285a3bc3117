"""The clients as the protocol endpoints read them: kept in each process between requests.

Every token request, and each ``/authorize``, needs its client's row, and reading it cost more
CPU than anything else the request did with the database (docs/performance.md, "Clients kept
between requests"). A row kept here is used only while the clients' *version* in the ephemeral
store is the one it was read under. Every committed change of a client (its metadata, its
secret, disabling or removing it) puts a new random version there, on whichever instance made
it, so every instance reads the row again at its next request: a change holds everywhere as
soon as it is committed, as it did when every request read the row.

The version is read through the store's tracked read (``get_tracked``). On Redis each process
keeps it in memory and Redis announces every write of it to every process, as it answers the
write (idp/store/tracking.py): a request reads it without a round trip, and a new version holds
at the first request after its announcement arrived. The SQL store reads it every time.

A version written before a change is committed would let another instance read the old row
under the new version, so it is written after. Should that write fail (the store unreachable
at that moment) a kept row still ends after ``MAX_AGE``; while the store is unreachable, rows
are read from the database, and so they are while the store has no version yet (the first
request after it lapsed or the store was emptied names a new one once it has committed).
Unknown client ids are not kept: nobody can fill the memory by making them up, and a client
registered on another instance is found at once.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from time import monotonic
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, object_session

from idp import context, db, jsoncodec
from idp.oidc.models import Client
from idp.store import StoreUnavailableError, store

log = logging.getLogger(__name__)

VERSION_KEY = "clients:version"
VERSION_TTL = timedelta(days=1)  # when it lapses, a new version: every row is read again once
MAX_AGE = 60.0  # seconds a row is kept at most, should a new version never have been written
MAX_ROWS = 10_000  # beyond that the cache starts afresh (far more clients than a city has)
REQUEST_CLIENTS = "idp.protocol_clients"  # Session.info key: the clients of this request

_clients = db.table_of(Client)
_ROW_BY_ID = select(_clients).where(_clients.c.client_id == bindparam("client_id"))


@dataclass(frozen=True)
class _Kept:
    version: bytes
    read_at: float  # monotonic()
    columns: dict[str, Any]  # the metadata as its JSON text: each request gets its own copy


class ClientCache:
    """One per app (process); the threads share it (a dictionary's get and set are atomic)."""

    def __init__(self) -> None:
        self._kept: dict[str, _Kept] = {}

    def client(self, session: Session, client_id: str) -> Client | None:
        """The client's row as a detached ``Client`` of this request's own, or None."""
        try:
            version = store().get_tracked(VERSION_KEY)
        except StoreUnavailableError:
            return _build(_read(session, client_id))  # cannot tell whether a kept row stands
        if version is None:
            # Named once this request has committed: on SQLite a write to the store now could
            # wait for the write lock this request's own transaction may hold.
            db.after_commit(name_a_version, session)
            return _build(_read(session, client_id))
        kept = self._kept.get(client_id)
        if kept is None or kept.version != version or monotonic() - kept.read_at > MAX_AGE:
            # The version was read first: a change committed meanwhile has put a newer one,
            # and the row read now is read again at the next request.
            columns = _read(session, client_id)
            if columns is None:
                return None
            kept = _Kept(version, monotonic(), columns)
            if len(self._kept) >= MAX_ROWS:
                self._kept.clear()
            self._kept[client_id] = kept
        return _build(kept.columns)


def _read(session: Session, client_id: str) -> dict[str, Any] | None:
    row = db.first(session, _ROW_BY_ID, {"client_id": client_id})
    if row is None:
        return None
    columns = dict(row._mapping)
    columns["client_metadata"] = jsoncodec.dumpb(columns["client_metadata"])
    return columns


def _build(columns: dict[str, Any] | None) -> Client | None:
    if columns is None:
        return None
    return db.unattached(
        Client, {**columns, "client_metadata": jsoncodec.loads(columns["client_metadata"])}
    )


def name_a_version() -> None:
    """The first version, or the next once it lapsed or the store was emptied: a new random
    one, so a row kept under an earlier version never matches again. Only where none is."""
    try:
        store().add(VERSION_KEY, secrets.token_hex(16).encode(), VERSION_TTL)
    except StoreUnavailableError as error:
        log.info("clients' version not named: store unavailable (%s)", error.detail)


def new_version() -> None:
    """After a change of a client is committed: every instance reads the rows again."""
    try:
        store().put(VERSION_KEY, secrets.token_hex(16).encode(), VERSION_TTL)
    except StoreUnavailableError as error:
        log.warning(
            "clients changed but their version could not be renewed (%s): instances may use "
            "the previous row for up to %d s",
            error.detail,
            MAX_AGE,
        )


def protocol_client(session: Session, client_id: str) -> Client | None:
    """The client as the protocol endpoints see it, read once per request."""
    known: dict[str, Client | None] = session.info.setdefault(REQUEST_CLIENTS, {})
    if client_id not in known:
        cache: ClientCache = context.app().extensions["idp.client_cache"]
        known[client_id] = cache.client(session, client_id)
    return known[client_id]


def init_app(app: Flask) -> None:
    app.extensions["idp.client_cache"] = ClientCache()


@event.listens_for(Client, "after_update")
@event.listens_for(Client, "after_delete")
def _renew_version_on_commit(_mapper: Any, _connection: Any, client: Client) -> None:
    session = object_session(client)
    if session is not None:
        db.after_commit(new_version, session)
