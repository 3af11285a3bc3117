"""``idp check``, the configuration doctor, as an operator runs it: each problem on a line of
its own naming the variable to set, exit status 1; and ``create_app`` in production mode
refusing to start on the same problems.

The configuration comes from the environment, as in production; the database and Redis named
here are closed loopback ports (neither is contacted by the check).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from idp import create_app
from idp.cli import main
from idp.config import ConfigError, Settings
from idp.signing.files import FileKeyStore
from idp.signing.pkcs11 import Pkcs11KeyStore, Token

Environment = dict[str, str | None]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def production(tmp_path: Path, keys_dir: Path, instance: Path) -> Environment:
    """A configuration fit for production (the README's Production section)."""
    return {
        "IDP_DEV_MODE": "0",
        "IDP_ISSUER": "https://login.example.gov.cn",
        "IDP_INSTANCE_DIR": str(instance),
        "IDP_SECRET_KEY": secrets.token_urlsafe(48),
        "IDP_DATA_KEY": Fernet.generate_key().decode(),
        "IDP_DATABASE_URL": f"postgresql+psycopg://idp@127.0.0.1:{closed_port()}/idp",
        "IDP_STORE_BACKEND": "redis",
        "IDP_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "IDP_SMS_BACKEND": "aliyun",
        "IDP_SMS_ACCESS_KEY_ID": "key-id",
        "IDP_SMS_ACCESS_KEY_SECRET": "key-secret",
        "IDP_SMS_SIGN_NAME": "统一认证",
        "IDP_SMS_TEMPLATE_LOGIN": "SMS_1",
        "IDP_SMS_TEMPLATE_PASSWORD": "SMS_2",
        "IDP_REALNAME_BACKEND": "tencent",
        "IDP_REALNAME_ACCESS_KEY_ID": "key-id",
        "IDP_REALNAME_ACCESS_KEY_SECRET": "key-secret",
        "IDP_KEYS_DIR": str(keys_dir),
    }


def idp_check(environment: Environment) -> Result:
    result: Result = CliRunner().invoke(main, ["check"], env=environment)
    return result


def problem_lines(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stdout.splitlines()


def test_a_production_configuration_passes(production: Environment) -> None:
    result = idp_check(production)

    assert (result.exit_code, result.stdout) == (0, "configuration ok (production mode)\n")


def test_development_mode_skips_the_production_checks(instance: Path) -> None:
    result = idp_check({"IDP_DEV_MODE": "1", "IDP_INSTANCE_DIR": str(instance)})

    assert (result.exit_code, result.stdout) == (0, "configuration ok (development mode)\n")


def test_the_defaults_in_production_mode_list_every_problem(instance: Path) -> None:
    lines = problem_lines(idp_check({"IDP_DEV_MODE": "0", "IDP_INSTANCE_DIR": str(instance)}))

    variables = [line.split()[0].split("=")[0] for line in lines]
    assert variables == [
        "IDP_SECRET_KEY",
        "IDP_DATA_KEY",
        "IDP_REALNAME_BACKEND",
        "IDP_SMS_BACKEND",
        "IDP_ISSUER",
        "IDP_DATABASE_URL",
        "IDP_STORE_BACKEND",
    ]


def write_development_secret(name: str) -> Callable[[Path], Environment]:
    """The value `make run` generated into instance/, copied into the production settings."""

    def write(instance: Path) -> Environment:
        value = Fernet.generate_key().decode() if name == "dev-data-key" else "d" * 64
        instance.mkdir(parents=True, exist_ok=True)
        (instance / name).write_text(value)
        variable = "IDP_DATA_KEY" if name == "dev-data-key" else "IDP_SECRET_KEY"
        return {variable: value}

    return write


def foreign_key_file(instance: Path) -> Environment:
    keys = instance.parent / "broken-keys"
    FileKeyStore(keys).generate("ES256")
    (keys / "copied-by-hand.json").write_text("{half a key")
    return {"IDP_KEYS_DIR": str(keys)}


PROBLEMS = [
    pytest.param({"IDP_SECRET_KEY": None}, "IDP_SECRET_KEY must be set", id="no-secret"),
    pytest.param(
        {"IDP_SECRET_KEY": "secret"}, "IDP_SECRET_KEY is shorter than 32", id="short-secret"
    ),
    pytest.param(
        write_development_secret("dev-secret-key"),
        "IDP_SECRET_KEY is the development secret from",
        id="dev-secret",
    ),
    pytest.param({"IDP_DATA_KEY": None}, "IDP_DATA_KEY must be set", id="no-data-key"),
    pytest.param(
        {"IDP_DATA_KEY": "not-a-key"}, "IDP_DATA_KEY is not a Fernet key", id="bad-data-key"
    ),
    pytest.param(
        write_development_secret("dev-data-key"),
        "IDP_DATA_KEY is the development key from",
        id="dev-data-key",
    ),
    pytest.param(
        {"IDP_SMS_BACKEND": "outbox"},
        "IDP_SMS_BACKEND=outbox is for development only (IDP_DEV_MODE=1); set aliyun or tencent",
        id="outbox",
    ),
    pytest.param(
        {"IDP_REALNAME_BACKEND": "sandbox"},
        "IDP_REALNAME_BACKEND=sandbox is for development only",
        id="sandbox",
    ),
    pytest.param(
        {"IDP_ISSUER": "http://login.example.gov.cn"},
        "IDP_ISSUER must be an https URL",
        id="http-issuer",
    ),
    pytest.param(
        {"IDP_DATABASE_URL": "sqlite:////srv/idp.sqlite3"},
        "IDP_DATABASE_URL is SQLite",
        id="sqlite",
    ),
    pytest.param({"IDP_STORE_BACKEND": "sql"}, "set IDP_STORE_BACKEND=redis", id="sql-store"),
    pytest.param(
        {"IDP_SMS_TEMPLATE_LOGIN": ""},
        "IDP_SMS_TEMPLATE_LOGIN must be set for IDP_SMS_BACKEND=aliyun",
        id="sms-vendor",
    ),
    pytest.param(
        {"IDP_REALNAME_ACCESS_KEY_SECRET": ""},
        "IDP_REALNAME_ACCESS_KEY_SECRET must be set for IDP_REALNAME_BACKEND=tencent",
        id="realname-vendor",
    ),
    pytest.param(foreign_key_file, "IDP_KEYS_DIR: ", id="unreadable-key-file"),
    pytest.param(
        {"IDP_KEY_STORE": "pkcs11", "IDP_PKCS11_TOKEN_LABEL": "idp", "IDP_PKCS11_PIN": "1"},
        "IDP_PKCS11_MODULE must name the HSM's PKCS#11 module",
        id="pkcs11-no-module",
    ),
    pytest.param({"IDP_KEY_STORE": "vault"}, "IDP_KEY_STORE must be files or pkcs11", id="store"),
]


def with_change(production: Environment, instance: Path, change: Any) -> Environment:
    return production | (change(instance) if callable(change) else change)


@pytest.mark.parametrize(("change", "message"), PROBLEMS)
def test_each_problem_is_a_line_naming_the_variable_and_exits_1(
    production: Environment, instance: Path, change: Any, message: str
) -> None:
    result = idp_check(with_change(production, instance, change))

    [line] = problem_lines(result)
    assert message in line
    assert result.stderr == "Error: 1 problem: fix them before running the provider\n"


@pytest.mark.parametrize(("change", "message"), PROBLEMS)
def test_the_provider_refuses_to_start_in_production_mode_on_the_same_problem(
    production: Environment, instance: Path, change: Any, message: str
) -> None:
    settings = Settings.read_env(
        {k: v for k, v in with_change(production, instance, change).items() if v is not None}
    )

    with pytest.raises(ConfigError) as caught:
        create_app(settings)

    assert message in str(caught.value)


def test_a_value_that_does_not_parse_is_named(production: Environment) -> None:
    lines = problem_lines(idp_check(production | {"IDP_DEV_MODE": "maybe"}))

    assert lines == ["IDP_DEV_MODE: not a boolean: 'maybe'"]


# --- PKCS#11 ----------------------------------------------------------------------------------


@pytest.fixture
def on_token(production: Environment, hsm_token: Any, tmp_path: Path) -> Environment:
    """Production settings with the keys in a SoftHSM2 token and the PIN in a file."""
    store = Pkcs11KeyStore(Token.open(hsm_token.address()))
    store.generate("ES256")
    store.generate("RS256")
    store.close()
    pin_file = tmp_path / "pkcs11-pin"
    pin_file.write_text(hsm_token.pin + "\n")
    return production | {
        "IDP_KEY_STORE": "pkcs11",
        "IDP_PKCS11_MODULE": hsm_token.module,
        "IDP_PKCS11_TOKEN_LABEL": hsm_token.label,
        "IDP_PKCS11_PIN_FILE": str(pin_file),
        "IDP_KEYS_DIR": None,
    }


def test_keys_in_a_token_pass(on_token: Environment) -> None:
    result = idp_check(on_token)

    assert (result.exit_code, result.stdout) == (0, "configuration ok (production mode)\n")


def test_a_wrong_pin_is_named_and_never_printed(on_token: Environment, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("975310\n")

    result = idp_check(on_token | {"IDP_PKCS11_PIN_FILE": str(wrong)})

    assert problem_lines(result) == [
        "IDP_PKCS11_PIN_FILE: the token refused the PIN (CKR_PIN_INCORRECT)"
    ]
    assert "975310" not in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"IDP_PKCS11_PIN_FILE": "/nonexistent/pin"}, "IDP_PKCS11_PIN_FILE: cannot read"),
        ({"IDP_PKCS11_TOKEN_LABEL": "other"}, "IDP_PKCS11_TOKEN_LABEL: no token labelled"),
        ({"IDP_PKCS11_MODULE": "/nonexistent/pkcs11.so"}, "IDP_PKCS11_MODULE: cannot load"),
        ({"IDP_PKCS11_PIN": "246810"}, "set one of IDP_PKCS11_PIN_FILE and IDP_PKCS11_PIN"),
    ],
)
def test_an_unusable_token_is_named(
    on_token: Environment, change: Environment, message: str
) -> None:
    lines = problem_lines(idp_check(on_token | change))

    assert len(lines) == 1
    assert lines[0].startswith(message)
    assert "246810" not in lines[0]


def test_a_misspelt_variable_and_the_old_proxy_switch_are_reported_by_name(
    instance: Path,
) -> None:
    lines = problem_lines(
        idp_check({"IDP_DEVMODE": "0", "IDP_TRUST_PROXY": "1", "IDP_INSTANCE_DIR": str(instance)})
    )

    assert "IDP_DEVMODE is not a setting (did you mean IDP_DEV_MODE?)" in lines
    assert any(
        line.startswith("IDP_TRUST_PROXY") and "IDP_TRUSTED_PROXIES" in line for line in lines
    )


def test_development_mode_with_a_public_issuer_is_reported(instance: Path) -> None:
    lines = problem_lines(
        idp_check(
            {
                "IDP_DEV_MODE": "1",
                "IDP_ISSUER": "http://login.example.gov.cn",
                "IDP_INSTANCE_DIR": str(instance),
            }
        )
    )

    assert [line.split()[0] for line in lines] == ["IDP_ISSUER"]
    assert "loopback" in lines[0]
