"""Certificate-login configuration is checked when the provider starts: a setting that would read
the USCC from the wrong place refuses to start, with a ConfigError naming what is wrong."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.config import ConfigError, Settings


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
