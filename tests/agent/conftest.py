"""Fixtures for the UKey agent: a session PKI, SoftHSM2 tokens in each test's own directory, and
the agent's app over them.

Isolation (docs/ukey.md §1): every test points ``SOFTHSM2_CONF`` at its own ``tmp_path`` before the
agent loads the module, and unloads it at teardown, so tests are independent and xdist-safe (each
worker is a process with its own environment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.ukey_agent.app import create_app
from clients.ukey_agent.config import AgentConfig
from clients.ukey_agent.pkcs11_signer import Pkcs11Signer
from clients.ukey_agent.softhsm_token import (
    SoftToken,
    create_soft_token,
    softhsm_module,
    write_conf,
)
from tests.agent.helpers import ORIGIN, PIN, PORT, SO_PIN, AgentClient, Issued, Pki, make_pki
from tests.conftest import missing


@pytest.fixture(scope="session")
def pki() -> Pki:
    """Keys and certificates made once per session (RSA on a token costs 60–120 ms; here once)."""
    return make_pki()


@pytest.fixture(scope="session")
def module() -> str:
    """The SoftHSM2 PKCS#11 module, or a skip (a failure under IDP_TEST_REQUIRE_ALL=1)."""
    path = softhsm_module()
    if path is None:
        missing("SoftHSM2 is not installed (apt-get install softhsm2): no libsofthsm2.so")
    assert path is not None
    return path


@dataclass
class Tokens:
    """The UKeys "plugged in" for one test: SoftHSM2 tokens sharing one directory."""

    directory: Path

    @property
    def conf(self) -> Path:
        return write_conf(self.directory)

    def add(
        self,
        issued: Issued,
        *,
        label: str = "ukey-1",
        extra_certs: Iterable[bytes] = (),
        extra_keys: Iterable[Issued] = (),
    ) -> SoftToken:
        return create_soft_token(
            self.directory,
            label=label,
            pin=PIN,
            so_pin=SO_PIN,
            key=issued.key,
            cert_der=issued.der,
            extra_certs=extra_certs,
            extra_keys=[(i.key, i.der) for i in extra_keys],
        )


@pytest.fixture
def tokens(tmp_path: Path, module: str) -> Tokens:
    return Tokens(tmp_path / "softhsm")


@pytest.fixture
def signers(
    monkeypatch: pytest.MonkeyPatch, module: str, tokens: Tokens
) -> Iterator[Callable[..., Pkcs11Signer]]:
    """Open ``Pkcs11Signer``s on this test's tokens; all are unloaded at teardown (PyKCS11
    reference-counts the module, so a left-over one would pin the old ``SOFTHSM2_CONF``)."""
    opened: list[Pkcs11Signer] = []

    def open_signer(*, rsa_pss: bool = False) -> Pkcs11Signer:
        monkeypatch.setenv("SOFTHSM2_CONF", str(tokens.conf))
        signer = Pkcs11Signer(module=module, rsa_pss=rsa_pss)
        opened.append(signer)
        return signer

    yield open_signer
    for signer in opened:
        signer.close()


@pytest.fixture
def agent(module: str, signers: Callable[..., Pkcs11Signer]) -> Callable[..., AgentClient]:
    """The agent app over this test's tokens, as the login page at ``ORIGIN`` talks to it."""

    def make(*, rsa_pss: bool = False, origins: tuple[str, ...] = (ORIGIN,)) -> AgentClient:
        config = AgentConfig(allowed_origins=origins, port=PORT, module=module, rsa_pss=rsa_pss)
        return AgentClient(create_app(config, signers(rsa_pss=rsa_pss)), port=PORT)

    return make


@pytest.fixture
def rsa_token(tokens: Tokens, pki: Pki) -> SoftToken:
    """A typical 一证通 UKey: RSA signing key + certificate, an encryption key + certificate, and
    the issuing CA chain."""
    return tokens.add(pki.rsa, extra_keys=[pki.encryption], extra_certs=pki.chain)
