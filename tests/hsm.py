"""SoftHSM2 tokens for the PKCS#11 key store: one empty token per test in its own directory.

The token is initialised with ``softhsm2-util``, as an operator would (README, Production), and
``SOFTHSM2_CONF`` points at the test's directory before the store loads the module (ukey §1).
Every store a test opens must be closed, so the next test's configuration is read afresh.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import PyKCS11

from idp.signing.pkcs11 import TokenAddress
from tests.ukey_token import softhsm_module, write_conf

LABEL = "idp-signing"
PIN = "246810"
SO_PIN = "135791"


@dataclass(frozen=True)
class HsmToken:
    """An initialised, empty SoftHSM2 token; ``conf`` is what ``SOFTHSM2_CONF`` names."""

    module: str
    conf: Path
    label: str = LABEL
    pin: str = PIN

    def address(self, **changes: Any) -> TokenAddress:
        values: dict[str, Any] = {"module": self.module, "token_label": self.label, "pin": self.pin}
        return TokenAddress(**(values | changes))

    def settings(self) -> dict[str, object]:
        """Settings overrides selecting this token."""
        return {
            "key_store": "pkcs11",
            "pkcs11_module": self.module,
            "pkcs11_token_label": self.label,
            "pkcs11_pin": self.pin,
        }

    def environment(self) -> dict[str, str]:
        """The same for a subprocess (``idp keys ...``)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "IDP_KEY_STORE": "pkcs11",
            "IDP_PKCS11_MODULE": self.module,
            "IDP_PKCS11_TOKEN_LABEL": self.label,
            "IDP_PKCS11_PIN": self.pin,
        }


def softhsm_missing() -> str | None:
    """Why SoftHSM2 cannot be used here, or None."""
    if softhsm_module() is None:
        return "SoftHSM2 is not installed (apt-get install softhsm2): no libsofthsm2.so"
    if shutil.which("softhsm2-util") is None:
        return "SoftHSM2 is not installed (apt-get install softhsm2): no softhsm2-util"
    return None


def make_hsm_token(directory: Path, *, label: str = LABEL) -> HsmToken:
    module = softhsm_module()
    assert module is not None
    conf = write_conf(directory)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        check=True,
        capture_output=True,
    )
    return HsmToken(module=module, conf=conf, label=label)


@contextmanager
def token_session(token: HsmToken) -> Iterator[Any]:
    """A session of the test's own on the token, as another application would hold one; the
    module is shared with any store of the same process (PyKCS11 counts its users)."""
    lib = PyKCS11.PyKCS11Lib()
    lib.load(token.module)
    try:
        slot = next(
            slot
            for slot in lib.getSlotList(tokenPresent=True)
            if lib.getTokenInfo(slot).label.rstrip(" \x00") == token.label
        )
        session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
        try:
            try:
                session.login(token.pin)
            except PyKCS11.PyKCS11Error as error:
                if error.value != PyKCS11.CKR_USER_ALREADY_LOGGED_IN:
                    raise
            yield session
        finally:
            session.closeSession()
    finally:
        lib.unload()


def private_key_labels(token: HsmToken) -> list[str]:
    with token_session(token) as session:
        handles = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
        return sorted(session.getAttributeValue(h, [PyKCS11.CKA_LABEL])[0] for h in handles)
