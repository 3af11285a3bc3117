"""The reusable SoftHSM2 token helper (clients/ukey_agent/softhsm_token.py) that the agent, browser tests and
``make run`` build their UKeys with."""

from __future__ import annotations

import PyKCS11
import pytest

from clients.ukey_agent.softhsm_token import (
    create_soft_token,
    key_id,
    loaded_module,
    make_soft_token,
    user_session,
)
from tests.agent.helpers import PIN, SO_PIN


def test_token_holds_key_pair_and_certificate_under_one_id(tmp_path, module, pki):
    conf = make_soft_token(
        tmp_path, label="ukey-demo", pin=PIN, so_pin=SO_PIN, key=pki.ec.key, cert_der=pki.ec.der
    )

    assert conf == tmp_path / "softhsm2.conf"
    assert "objectstore.backend = file" in conf.read_text()
    with user_session(conf, label="ukey-demo", pin=PIN) as session:
        cka_id = key_id(pki.ec.der)
        found = {
            cls: session.findObjects([(PyKCS11.CKA_CLASS, cls), (PyKCS11.CKA_ID, cka_id)])
            for cls in (PyKCS11.CKO_PRIVATE_KEY, PyKCS11.CKO_PUBLIC_KEY, PyKCS11.CKO_CERTIFICATE)
        }
        private = found[PyKCS11.CKO_PRIVATE_KEY][0]
        sensitive, extractable = session.getAttributeValue(
            private, [PyKCS11.CKA_SENSITIVE, PyKCS11.CKA_EXTRACTABLE]
        )
    assert all(len(handles) == 1 for handles in found.values())
    assert (sensitive, extractable) == (True, False)


def test_encryption_key_added_later(tmp_path, module, pki):
    token = create_soft_token(
        tmp_path, label="ukey-demo", pin=PIN, so_pin=SO_PIN, key=pki.rsa.key, cert_der=pki.rsa.der
    )
    token.add_key_pair(key=pki.encryption.key, cert_der=pki.encryption.der)
    token.add_certificates(pki.chain)

    with user_session(token.conf, label="ukey-demo", pin=PIN) as session:
        certificates = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_CERTIFICATE)])
        private_keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY)])
    assert (len(certificates), len(private_keys)) == (4, 2)


def test_refuses_to_switch_configuration_while_loaded(tmp_path, module, pki):
    """PyKCS11 would reuse the initialised module and its old SOFTHSM2_CONF."""
    first = make_soft_token(
        tmp_path / "a", label="a", pin=PIN, so_pin=SO_PIN, key=pki.ec.key, cert_der=pki.ec.der
    )
    with loaded_module(first), pytest.raises(RuntimeError, match="already loaded"):
        make_soft_token(
            tmp_path / "b", label="b", pin=PIN, so_pin=SO_PIN, key=pki.ec.key, cert_der=pki.ec.der
        )


def test_duplicate_label_refused(tmp_path, module, pki):
    make_soft_token(
        tmp_path, label="x", pin=PIN, so_pin=SO_PIN, key=pki.ec.key, cert_der=pki.ec.der
    )

    with pytest.raises(ValueError, match="already exists"):
        make_soft_token(
            tmp_path, label="x", pin=PIN, so_pin=SO_PIN, key=pki.ec.key, cert_der=pki.ec.der
        )


def test_key_must_match_certificate(tmp_path, module, pki):
    with pytest.raises(ValueError, match="does not belong"):
        make_soft_token(
            tmp_path, label="x", pin=PIN, so_pin=SO_PIN, key=pki.rsa.key, cert_der=pki.ec.der
        )
