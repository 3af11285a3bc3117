"""The protocol endpoints, and the pipeline and helpers every request runs through, read
Flask's app, request and ``g`` themselves (``idp.context``): a read through one of werkzeug's
proxies first raises and drops an ``AttributeError`` (docs/performance.md, "Attributes read
through Flask's proxies"). Each request here is watched for such reads made by the provider's
own code; a failure names the lines."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from werkzeug import local

import idp
from tests.conftest import both_databases, register
from tests.flows import token_request
from tests.integration.oidc.helpers import refresh

pytestmark = both_databases

PROVIDER = str(Path(idp.__file__).parent)
PROXY_LOOKUP = local._ProxyLookup.__get__.__code__


@contextlib.contextmanager
def proxy_reads_by_the_provider() -> Iterator[Counter[str]]:
    """Lines of the provider that read through a proxy while the block runs, with their counts."""
    reads: Counter[str] = Counter()

    def watch(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or frame.f_code is not PROXY_LOOKUP:
            return
        caller = frame.f_back
        while caller is not None and caller.f_code.co_filename == local.__file__:
            caller = caller.f_back  # the proxy's own frames (a call through the proxy)
        if caller is not None and caller.f_code.co_filename.startswith(PROVIDER):
            where = Path(caller.f_code.co_filename).relative_to(PROVIDER)
            reads[f"idp/{where}:{caller.f_lineno}"] += 1

    sys.setprofile(watch)
    try:
        yield reads
    finally:
        sys.setprofile(None)


def test_a_client_credentials_token_and_its_introspection(client, app):
    backend = register(app, {"grant_types": ["client_credentials"], "scope": "org.operators"})
    grant = {"grant_type": "client_credentials", "scope": "org.operators"}
    token_request(client, grant, auth=backend.auth)  # the first request builds what is kept
    with proxy_reads_by_the_provider() as reads:
        issued = token_request(client, grant, auth=backend.auth)
        assert issued.status_code == 200, issued.text
        answer = client.post(
            "/oauth/introspect", data={"token": issued.json["access_token"]}, auth=backend.auth
        )
        assert answer.status_code == 200 and answer.json["active"] is True, answer.text
    assert reads == {}


def test_a_refresh_and_userinfo(client, rp, issue_tokens):
    tokens = issue_tokens()
    with proxy_reads_by_the_provider() as reads:
        refreshed = refresh(client, rp, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        bearer = {"Authorization": f"Bearer {refreshed.json['access_token']}"}
        answer = client.get("/oauth/userinfo", headers=bearer)
        assert answer.status_code == 200 and answer.json["sub"], answer.text
    assert reads == {}


def test_a_refused_request_too(client, rp):
    with proxy_reads_by_the_provider() as reads:
        refused = token_request(
            client, {"grant_type": "refresh_token", "refresh_token": "unknown"}, auth=rp.auth
        )
        assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
        answer = client.get("/oauth/userinfo", headers={"Authorization": "Bearer unknown"})
        assert answer.status_code == 401
    assert reads == {}
