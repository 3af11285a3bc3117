"""``ukey-agent`` / ``python -m clients.ukey_agent``: run the UKey agent on 127.0.0.1."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from . import autostart
from .config import AgentConfig, ConfigError, config_from, parser
from .errors import AgentError
from .interface import TokenSigner
from .server import make_agent_server
from .stamp import StampError, read_stamp

log = logging.getLogger("clients.ukey_agent")


def open_signer(config: AgentConfig) -> TokenSigner:
    """SKF when a library is given (SM2 UKeys), else the PKCS#11 module; a development software
    token only when explicitly asked for."""
    if config.dev_soft_token:
        from pathlib import Path

        from .soft_token import SoftTokenSigner

        log.warning("DEVELOPMENT ONLY: software token %s, not a UKey", config.dev_soft_token)
        return SoftTokenSigner(Path(config.dev_soft_token))
    if config.skf_library:
        from .skf_signer import SkfSigner

        log.warning("SKF support is untested without hardware: %s", config.skf_library)
        return SkfSigner.from_library(config.skf_library)
    from .pkcs11_signer import Pkcs11Signer

    assert config.module is not None  # noqa: S101 (AgentConfig refuses neither being set)
    return Pkcs11Signer(module=config.module, rsa_pss=config.rsa_pss)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends ``serve_forever`` like Ctrl-C, so the token library is finalised."""
    sys.exit(0)


def _serve(config: AgentConfig, signer: TokenSigner) -> None:
    """Serve until Ctrl-C or SIGTERM; the token library is always released."""
    try:
        server = make_agent_server(config, signer)
    except OSError as error:
        signer.close()
        raise SystemExit(f"无法监听 {config.bind}:{config.port}: {error}") from error
    except SystemExit:  # werkzeug exits by itself when the port is taken
        signer.close()
        raise
    signal.signal(signal.SIGTERM, _stop)
    log.info(
        "UKey agent on http://%s:%d for %s (%s)",
        config.bind,
        server.port,
        ", ".join(config.allowed_origins),
        config.dev_soft_token or config.skf_library or config.module,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        signer.close()


def stamped_config() -> dict[str, Any] | None:
    """The provider's configuration stamped into the downloaded bundle (none from source)."""
    if not autostart.is_frozen():
        return None
    try:
        return read_stamp(Path(sys.executable))
    except (OSError, StampError) as error:
        _fail(f"配置错误：下载的客户端工具已损坏，请重新下载（{error}）")
    return None  # unreachable: _fail exits


def _fail(message: str) -> NoReturn:
    """Stop with ``message``, also in the log: the windowed Windows bundle has no console."""
    log.error("%s", message)
    raise SystemExit(message)


def _log_to(verbose: bool) -> None:
    """Log to the console; the windowed Windows bundle has none, so it logs to a file in its
    program directory instead."""
    options: dict[str, Any] = {
        "level": logging.DEBUG if verbose else logging.INFO,
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
    }
    if sys.stderr is None:
        app_dir = autostart.Place.here().app_dir
        app_dir.mkdir(parents=True, exist_ok=True)
        options["filename"] = str(app_dir / "ukey-agent.log")
    logging.basicConfig(**options)


def _autostart(install: bool, options: list[str]) -> None:
    """``--install``, and every start of the downloaded bundle without options (a double-click
    is all the accountant does): keep the autostart entry in place."""
    if not install and not (autostart.is_frozen() and not options):
        return
    try:
        where = autostart.install(
            autostart.forwarded_options(options),
            place=autostart.Place.here(),
            frozen=autostart.is_frozen(),
            executable=sys.executable,
        )
    except (OSError, autostart.AutostartError) as error:
        log.error("autostart entry not written: %s", error)
    else:
        log.info("starts with the desktop session: %s", where)


def main(argv: list[str] | None = None) -> None:
    """Check the settings, open the token library and serve until interrupted."""
    options = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(options)
    _log_to(args.verbose)
    if args.uninstall:
        removed = autostart.uninstall(place=autostart.Place.here())
        print("已取消开机自动启动" if removed else "没有找到开机自动启动项")
        return
    try:
        config = config_from(args, stamped=stamped_config())
    except ConfigError as error:
        _fail(f"配置错误：{error}")
    _autostart(args.install, options)
    try:
        signer = open_signer(config)
    except AgentError as error:
        _fail(f"无法打开 UKey 库: {error.detail or error.message}")
    _serve(config, signer)


if __name__ == "__main__":
    main()
