"""The provider as the multi-instance tests run it under ``idp-serve``: ``create_app()`` from the
``IDP_*`` environment, wrapped in one test switch that kills the worker during a token request.

When the file named by ``MULTI_TEST_KILL_FILE`` exists, the next ``POST /oauth/token`` kills
its worker with SIGKILL, at the moment the file names:

- ``before``: as the request arrives, before the provider has read it;
- ``claimed``: right after the claim of the authorization code is committed: with its own
  statement where statements stand alone (PostgreSQL), else at the request's first commit;
- ``after``: once the provider has answered (its transaction committed), before one byte of
  the answer is sent: the client sees the connection drop.

The file is removed first, so the client's retry reaches the worker the server starts anew.

Argon2id keeps test-sized costs, as in ``tests/integration/conftest.py``: the production profile
(64 MiB, 3 passes) would rehash every password the tests set at each login, on every instance.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from idp import create_app
from idp.auth import passwords

KILL_FILE = Path(os.environ.get("MULTI_TEST_KILL_FILE", "/nonexistent"))


def kill_moment(environ: dict[str, Any]) -> str | None:
    if environ.get("PATH_INFO") != "/oauth/token" or environ.get("REQUEST_METHOD") != "POST":
        return None
    try:
        moment = KILL_FILE.read_text().strip()
        KILL_FILE.unlink()
    except FileNotFoundError:
        return None
    return moment


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


DIE_ONCE_CLAIMED = {"armed": False}


@event.listens_for(Session, "after_commit")
def _die_if_armed(_session: Session) -> None:
    if DIE_ONCE_CLAIMED["armed"]:
        die()


@event.listens_for(Engine, "after_cursor_execute")
def _die_if_armed_and_claimed_alone(
    connection: Connection, _cursor: Any, statement: str, *_args: Any
) -> None:
    # statements stand alone on PostgreSQL only, on connections in the driver's autocommit
    alone = getattr(connection.connection.dbapi_connection, "autocommit", None) is True
    if DIE_ONCE_CLAIMED["armed"] and alone and "SET consumed_at=" in statement:
        die()


class KillSwitch:
    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        moment = kill_moment(environ)
        if moment == "before":
            die()
        if moment == "claimed":
            DIE_ONCE_CLAIMED["armed"] = True
        if moment == "after":
            body = self.app(environ, lambda *_args: None)
            b"".join(body)  # the whole answer is made (and committed), never sent
            die()
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


passwords.current_hasher = lambda: passwords._hasher(1, 1024, 1)  # type: ignore[assignment]
app = KillSwitch(create_app())
