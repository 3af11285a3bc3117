"""Certificate-login configuration is checked when the provider starts: a setting or an entry of
the trust directory's uscc-order.json that would read the USCC from the wrong place, or drop an
issuer's requirement, refuses to start with a ConfigError naming the file and the entry."""

from __future__ import annotations

import pytest

from idp import create_app, db
from idp.config import ConfigError, Settings
from tests.pki import TestPki, shared_pki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return shared_pki()


def provider_settings(settings: Settings, **changes: object) -> Settings:
    values = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
    return Settings.from_env({}, **(values | changes))


@pytest.mark.parametrize("source", ["serialNumber", "organizationIdentifier", "OU", "CN"])
def test_a_subject_attribute_in_the_default_order_refuses_to_start(settings, source):
    changed = provider_settings(settings, cert_uscc_order=f"ext:1.2.156.10260.4.1.4,{source}")
    with pytest.raises(ConfigError, match=f"IDP_CERT_USCC_ORDER: subject attribute '{source}'"):
        create_app(changed)


@pytest.mark.parametrize("order", ["ext:1.2.x", "O", ""])
def test_an_unusable_default_order_refuses_to_start(settings, order):
    with pytest.raises(ConfigError, match="IDP_CERT_USCC_ORDER"):
        create_app(provider_settings(settings, cert_uscc_order=order))


def trust_dir_with(pki, tmp_path, content: str):
    trust = pki.write_trust_dir(tmp_path / "trust")
    (trust / "uscc-order.json").write_text(content)
    return trust


ISSUER = "CN=Test intermediate CA,O=UKey Test PKI,C=CN"
BROKEN_ENTRIES = {
    "unknown source": (f'{{"{ISSUER}": ["CN", "subjectAltName"]}}', "unknown USCC source"),
    "unknown key": (f'{{"{ISSUER}": {{"policy": ["1.2.3.4"]}}}}', "unknown key 'policy'"),
    "malformed policy": (f'{{"{ISSUER}": {{"policies": ["1.2.x"]}}}}', "'1.2.x' is not an OID"),
    "malformed eku": (f'{{"{ISSUER}": {{"eku": ["clientAuth"]}}}}', "'clientAuth' is not an OID"),
}


@pytest.mark.parametrize(("content", "problem"), BROKEN_ENTRIES.values(), ids=BROKEN_ENTRIES)
def test_a_broken_issuer_entry_refuses_to_start_naming_the_file_and_entry(
    settings, pki, tmp_path, content, problem
):
    trust = trust_dir_with(pki, tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        create_app(provider_settings(settings, trust_dir=trust))
    message = str(caught.value)
    assert message.startswith(f"{trust / 'uscc-order.json'}: entry '{ISSUER}': ")
    assert problem in message


def test_an_unreadable_issuer_file_refuses_to_start(settings, pki, tmp_path):
    trust = trust_dir_with(pki, tmp_path, "{not json")
    with pytest.raises(ConfigError, match=r"uscc-order\.json: Expecting property name"):
        create_app(provider_settings(settings, trust_dir=trust))


def test_a_valid_issuer_file_starts(settings, pki, tmp_path):
    content = f'{{"{ISSUER}": {{"uscc": ["OU"], "policies": ["1.2.156.1.2"], "eku": ["1.3.6.1.5.5.7.3.2"]}}}}'
    trust = trust_dir_with(pki, tmp_path, content)
    app = create_app(provider_settings(settings, trust_dir=trust))
    db.dispose(app)
