"""Settings: no default origin, origins normalised like the ``Origin`` header, loopback only."""

from __future__ import annotations

import pytest

from clients.ukey_agent.__main__ import main
from clients.ukey_agent.config import (
    DEFAULT_PORT,
    AgentConfig,
    ConfigError,
    config_from,
    normalize_origin,
    parser,
)
from clients.ukey_agent.server import make_agent_server

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the value the agent must refuse)


def _config(argv: list[str], env: dict[str, str] | None = None) -> AgentConfig:
    return config_from(parser().parse_args(argv), env or {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://login.example.cn", "https://login.example.cn"),
        ("https://Login.Example.CN/", "https://login.example.cn"),
        ("https://login.example.cn:443", "https://login.example.cn"),
        ("https://login.example.cn:8443", "https://login.example.cn:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_origins_are_normalised(value, expected):
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "login.example.cn",
        "https://login.example.cn/login",
        "https://login.example.cn?x=1",
        "https://user@login.example.cn",
        "http://login.example.cn",
        "ftp://login.example.cn",
        "*",
        "null",
    ],
)
def test_bad_origins_are_refused(value):
    with pytest.raises(ConfigError):
        normalize_origin(value)


def test_origins_from_options_or_environment(module):
    from_options = _config(
        ["--allow-origin", "https://a.example.cn", "--allow-origin", "https://b.example.cn"]
    )
    from_env = _config([], {"UKEY_ALLOWED_ORIGINS": "https://a.example.cn, https://b.example.cn/"})

    assert from_options.allowed_origins == ("https://a.example.cn", "https://b.example.cn")
    assert from_env.allowed_origins == ("https://a.example.cn", "https://b.example.cn")


def test_no_default_origin(module):
    with pytest.raises(ConfigError, match="no allowed origin"):
        _config([])


def test_port_and_module(module):
    default = _config(["--allow-origin", "https://a.example.cn"])
    from_env = _config(
        ["--allow-origin", "https://a.example.cn"],
        {"UKEY_AGENT_PORT": "18443", "UKEY_PKCS11_MODULE": "/opt/vendor/libpkcs11.so"},
    )
    from_options = _config(
        ["--allow-origin", "https://a.example.cn", "--port", "19443", "--module", "/x.so"]
    )

    assert (default.port, default.module) == (DEFAULT_PORT, module)
    assert (from_env.port, from_env.module) == (18443, "/opt/vendor/libpkcs11.so")
    assert (from_options.port, from_options.module) == (19443, "/x.so")
    assert default.allowed_hosts == {"127.0.0.1:17443", "localhost:17443"}


@pytest.mark.parametrize("bind", [ALL_INTERFACES, "::", "192.168.1.10", "localhost", "::1"])
def test_only_loopback_ipv4_is_bound(bind):
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1 only"):
        AgentConfig(allowed_origins=("https://a.example.cn",), module="/x.so", bind=bind)


def test_server_refuses_other_bind_address():
    config = AgentConfig(allowed_origins=("https://a.example.cn",), module="/x.so")
    object.__setattr__(config, "bind", ALL_INTERFACES)  # a config that skipped its own checks

    with pytest.raises(ConfigError):
        make_agent_server(config, signer=None)  # type: ignore[arg-type]


def test_main_refuses_bad_settings(capsys):
    with pytest.raises(SystemExit, match=r"127\.0\.0\.1 only"):
        main(
            [
                "--allow-origin",
                "https://a.example.cn",
                "--module",
                "/x.so",
                "--bind",
                ALL_INTERFACES,
            ]
        )
    with pytest.raises(SystemExit, match="no allowed origin"):
        main(["--module", "/x.so"])
