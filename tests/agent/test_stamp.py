"""The provider's origin stamped into the download is what the agent allows, with no option."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.ukey_agent.config import ConfigError, config_from, parser
from clients.ukey_agent.stamp import StampError, read_stamp, trailer
from idp.auth.agent_dist import stamp

EXECUTABLE = b"\x7fELF" + bytes(range(256)) * 40


def downloaded(tmp_path: Path, tail: bytes) -> Path:
    path = tmp_path / "ukey-agent-linux-x86_64"
    path.write_bytes(EXECUTABLE + tail)
    return path


def test_the_agent_reads_what_the_provider_stamps(tmp_path: Path) -> None:
    path = downloaded(tmp_path, stamp("https://Login.Example.cn:443/", "http://127.0.0.1:17500"))
    config = read_stamp(path)
    assert config == {"allowed_origins": ["https://login.example.cn"], "port": 17500, "v": 1}
    assert path.read_bytes().startswith(EXECUTABLE)  # the program itself is unchanged
    # Both sides write the same bytes for the same configuration.
    assert trailer(config) == stamp("https://login.example.cn", "http://127.0.0.1:17500")


def test_the_stamped_origin_and_port_need_no_option(tmp_path: Path) -> None:
    config = read_stamp(
        downloaded(tmp_path, stamp("https://login.example.cn", "http://127.0.0.1:17500"))
    )
    agent = config_from(parser().parse_args(["--module", "/x/p11.so"]), {}, config)
    assert agent.allowed_origins == ("https://login.example.cn",)
    assert agent.port == 17500


def test_an_option_or_the_environment_wins_over_the_stamp(tmp_path: Path) -> None:
    config = {"allowed_origins": ["https://login.example.cn"], "port": 17500, "v": 1}
    args = parser().parse_args(["--module", "/x/p11.so", "--allow-origin", "https://b.example.cn"])
    assert config_from(args, {}, config).allowed_origins == ("https://b.example.cn",)
    env = {"UKEY_ALLOWED_ORIGINS": "https://c.example.cn", "UKEY_AGENT_PORT": "17600"}
    agent = config_from(parser().parse_args(["--module", "/x/p11.so"]), env, config)
    assert (agent.allowed_origins, agent.port) == (("https://c.example.cn",), 17600)


def test_a_stamped_plain_http_origin_off_loopback_is_refused() -> None:
    config = {"allowed_origins": ["http://login.example.cn"], "v": 1}
    with pytest.raises(ConfigError, match="loopback"):
        config_from(parser().parse_args(["--module", "/x/p11.so"]), {}, config)


def test_a_file_without_a_stamp_has_no_configuration(tmp_path: Path) -> None:
    assert read_stamp(downloaded(tmp_path, b"")) is None
    short = tmp_path / "short"
    short.write_bytes(b"UKEYCFG1")  # too short to hold a length
    assert read_stamp(short) is None
    with pytest.raises(ConfigError, match="no allowed origin"):
        config_from(parser().parse_args(["--module", "/x/p11.so"]), {}, None)


@pytest.mark.parametrize(
    ("tail", "problem"),
    [
        (b"{}" + (10_000).to_bytes(4, "big") + b"UKEYCFG1", "not plausible"),
        (b"{not json" + (9).to_bytes(4, "big") + b"UKEYCFG1", "not JSON"),
        (b'{"v":2}' + (7).to_bytes(4, "big") + b"UKEYCFG1", "not version 1"),
        (b"[1]" + (3).to_bytes(4, "big") + b"UKEYCFG1", "not version 1"),
    ],
)
def test_a_damaged_stamp_is_an_error_not_a_silent_default(
    tmp_path: Path, tail: bytes, problem: str
) -> None:
    with pytest.raises(StampError, match=problem):
        read_stamp(downloaded(tmp_path, tail))


def test_stamped_origins_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(ConfigError, match="allowed_origins"):
        config_from(
            parser().parse_args(["--module", "/x/p11.so"]), {}, {"allowed_origins": "x", "v": 1}
        )
