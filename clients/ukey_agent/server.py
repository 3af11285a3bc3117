"""The threaded HTTP server on 127.0.0.1 that serves the agent's app."""

from __future__ import annotations

from dataclasses import replace

from werkzeug.serving import BaseWSGIServer, make_server

from .app import create_app
from .config import BIND_ADDRESS, AgentConfig, ConfigError
from .interface import TokenSigner


def make_agent_server(config: AgentConfig, signer: TokenSigner) -> BaseWSGIServer:
    """Bind 127.0.0.1 (nothing else, whatever the config says) and serve the app threaded.

    With ``port=0`` the kernel picks the port; the app is then rebuilt with the real port so the
    ``Host`` check expects it.
    """
    if config.bind != BIND_ADDRESS:
        raise ConfigError(f"the agent listens on {BIND_ADDRESS} only")
    server = make_server(BIND_ADDRESS, config.port, create_app(config, signer), threaded=True)
    if config.port == 0:
        server.app = create_app(replace(config, port=server.port), signer)
    return server
