"""SoftHSM2 tokens for tests: the helper lives with the agent (``make run`` uses it too)."""

from clients.ukey_agent.softhsm_token import (
    SoftToken,
    create_soft_token,
    empty_token_dir,
    make_soft_token,
    softhsm_module,
    write_conf,
)

__all__ = [
    "SoftToken",
    "create_soft_token",
    "empty_token_dir",
    "make_soft_token",
    "softhsm_module",
    "write_conf",
]
