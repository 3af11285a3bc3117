"""Settings from ``IDP_*``: every refused setting is listed at once, each naming its variable;
the PKCS#11 key store's settings; the PIN stays out of the settings' repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.config import ConfigError, Settings

PKCS11 = {
    "IDP_KEY_STORE": "pkcs11",
    "IDP_PKCS11_MODULE": "/usr/lib/vendor/libpkcs11.so",
    "IDP_PKCS11_TOKEN_LABEL": "idp-signing",
    "IDP_PKCS11_PIN_FILE": "/run/secrets/pkcs11-pin",
}


@pytest.fixture
def instance(tmp_path: Path) -> dict[str, str]:
    return {"IDP_INSTANCE_DIR": str(tmp_path)}


def test_every_refused_setting_is_listed_at_once(instance: dict[str, str]) -> None:
    environment = instance | {"IDP_DEV_MODE": "0", "IDP_STORE_BACKEND": "memcached"}

    with pytest.raises(ConfigError) as caught:
        Settings.from_env(environment)

    assert str(caught.value).splitlines() == [
        "IDP_STORE_BACKEND must be redis or sql",
        "IDP_SECRET_KEY must be set outside development mode",
        "IDP_DATA_KEY must be set outside development mode",
        "IDP_REALNAME_BACKEND=sandbox is for development only (IDP_DEV_MODE=1); set aliyun or tencent",
        "IDP_SMS_BACKEND=outbox is for development only (IDP_DEV_MODE=1); set aliyun or tencent",
        "IDP_ISSUER must be an https URL outside development mode",
    ]


def test_read_env_reads_without_judging(instance: dict[str, str]) -> None:
    settings = Settings.read_env(instance | {"IDP_DEV_MODE": "0"})

    assert settings.secret_key == ""
    assert "IDP_SECRET_KEY must be set outside development mode" in settings.problems()


def test_unparsable_values_are_listed_together(instance: dict[str, str]) -> None:
    environment = instance | {"IDP_DEV_MODE": "maybe", "IDP_PKCS11_SLOT": "first"}

    with pytest.raises(ConfigError) as caught:
        Settings.read_env(environment)

    lines = str(caught.value).splitlines()
    assert lines[0] == "IDP_DEV_MODE: not a boolean: 'maybe'"
    assert lines[1].startswith("IDP_PKCS11_SLOT: invalid literal for int()")


def test_pkcs11_settings(instance: dict[str, str]) -> None:
    settings = Settings.from_env(instance | PKCS11)

    assert (settings.key_store, settings.pkcs11_slot) == ("pkcs11", None)
    assert settings.jwks_max_age == 300


def test_a_slot_id_instead_of_a_label(instance: dict[str, str]) -> None:
    environment = instance | PKCS11 | {"IDP_PKCS11_TOKEN_LABEL": "", "IDP_PKCS11_SLOT": "3"}

    assert Settings.from_env(environment).pkcs11_slot == 3


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"IDP_PKCS11_MODULE": ""},
            "IDP_PKCS11_MODULE must name the HSM's PKCS#11 module for IDP_KEY_STORE=pkcs11",
        ),
        (
            {"IDP_PKCS11_TOKEN_LABEL": ""},
            "set one of IDP_PKCS11_TOKEN_LABEL and IDP_PKCS11_SLOT for IDP_KEY_STORE=pkcs11",
        ),
        (
            {"IDP_PKCS11_SLOT": "0"},
            "set one of IDP_PKCS11_TOKEN_LABEL and IDP_PKCS11_SLOT for IDP_KEY_STORE=pkcs11",
        ),
        (
            {"IDP_PKCS11_PIN_FILE": ""},
            "set one of IDP_PKCS11_PIN_FILE and IDP_PKCS11_PIN for IDP_KEY_STORE=pkcs11",
        ),
        (
            {"IDP_PKCS11_PIN": "123456"},
            "set one of IDP_PKCS11_PIN_FILE and IDP_PKCS11_PIN for IDP_KEY_STORE=pkcs11",
        ),
        ({"IDP_KEY_STORE": "vault"}, "IDP_KEY_STORE must be files or pkcs11"),
    ],
)
def test_incomplete_pkcs11_settings_are_refused(
    instance: dict[str, str], changes: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(instance | PKCS11 | changes)

    assert str(caught.value).splitlines() == [problem]
    assert "123456" not in str(caught.value)


def test_the_pin_is_not_in_the_settings_repr(instance: dict[str, str]) -> None:
    environment = instance | PKCS11 | {"IDP_PKCS11_PIN_FILE": "", "IDP_PKCS11_PIN": "864202"}

    settings = Settings.from_env(environment)

    assert settings.pkcs11_pin == "864202"
    assert "864202" not in repr(settings)


# --- unknown and retired variables; development mode stays on this machine -------------------


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("IDP_DEVMODE", "IDP_DEVMODE is not a setting (did you mean IDP_DEV_MODE?)"),
        ("IDP_SMS_BAKEND", "IDP_SMS_BAKEND is not a setting (did you mean IDP_SMS_BACKEND?)"),
        ("IDP_FROBNICATE", "IDP_FROBNICATE is not a setting"),
        ("IDP_TRUST_PROXY", "IDP_TRUST_PROXY was replaced by IDP_TRUSTED_PROXIES"),
    ],
)
def test_an_unknown_or_retired_variable_is_refused_with_the_closest_setting(
    instance: dict[str, str], variable: str, message: str
) -> None:
    with pytest.raises(
        ConfigError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")
    ):
        Settings.from_env(instance | {variable: "0"})


def test_the_test_suites_own_variables_are_not_settings(instance: dict[str, str]) -> None:
    settings = Settings.from_env(instance | {"IDP_TEST_REQUIRE_ALL": "1"})

    assert settings.dev_mode is True


@pytest.mark.parametrize("issuer", ["http://192.168.1.20:5000", "https://login.example.gov.cn"])
def test_development_mode_refuses_an_issuer_others_could_reach(
    instance: dict[str, str], issuer: str
) -> None:
    with pytest.raises(ConfigError, match="IDP_ISSUER must be a loopback URL"):
        Settings.from_env(instance | {"IDP_ISSUER": issuer})


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:5000", "http://localhost", "http://[::1]:8080"]
)
def test_development_mode_accepts_loopback_issuers(instance: dict[str, str], issuer: str) -> None:
    assert Settings.from_env(instance | {"IDP_ISSUER": issuer}).issuer == issuer


def test_trusted_proxies_must_be_addresses_or_networks(instance: dict[str, str]) -> None:
    with pytest.raises(
        ConfigError, match=r"IDP_TRUSTED_PROXIES: not an address or network: 'proxy\.lan'"
    ):
        Settings.from_env(instance | {"IDP_TRUSTED_PROXIES": "10.0.0.5, proxy.lan"})
