"""The agent's README is what a vendor implements from: its payload example must be canonical as
the agent builds it, and its error table must list every code the agent sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

from clients.ukey_agent.errors import ERRORS
from clients.ukey_agent.payload import build_payload, canonical_json

README = Path(__file__).resolve().parents[2] / "clients" / "ukey_agent" / "README.md"


def _example() -> bytes:
    line = next(
        line.strip()
        for line in README.read_text().splitlines()
        if line.startswith('    {"cert_sha256"')
    )
    return line.encode()


def test_payload_example_is_canonical():
    example = _example()
    fields = json.loads(example)

    assert canonical_json(fields) == example
    assert set(fields) == {"cert_sha256", "nonce", "origin", "ts", "typ", "v"}


def test_agent_builds_the_same_shape(pki):
    fields = json.loads(_example())
    built = build_payload(
        cert_der=pki.rsa.der, challenge=fields["nonce"], origin=fields["origin"], ts=fields["ts"]
    )

    assert re.sub(rb'"cert_sha256":"[^"]+"', b"", built) == re.sub(
        rb'"cert_sha256":"[^"]+"', b"", _example()
    )


def test_every_error_code_is_documented():
    text = README.read_text()

    assert [code for code in ERRORS if f"| `{code}` |" not in text] == []
