"""``db.unattached``: the objects made for rows read by plain statements (a claimed code, a kept
client) read like constructed ones, in a process that has made no ORM object before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from sqlalchemy import inspect

from idp.db import unattached
from idp.oidc.models import Client


def test_an_unattached_client_reads_like_a_constructed_one() -> None:
    columns = {
        "id": 7,
        "client_id": "rp-1",
        "secret_hash": None,
        "client_metadata": {"redirect_uris": ["https://rp.example/cb"], "disabled": True},
    }
    client = unattached(Client, columns)
    assert client.client_id == "rp-1"
    assert client.disabled is True
    assert client.redirect_uris == ["https://rp.example/cb"]
    state = inspect(client)
    assert state.transient  # in no session: nothing it holds can be flushed
    assert not state.modified


def test_it_works_before_any_other_orm_object_in_the_process() -> None:
    # The mappers are configured on first use; without that an attribute read fails.
    program = textwrap.dedent(
        """
        from idp.db import unattached
        from idp.oidc.models import Client
        client = unattached(Client, {"client_id": "rp-1", "client_metadata": {}})
        print(client.disabled, client.client_id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "rp-1"]
