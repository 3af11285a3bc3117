"""The agent's one error type and the protocol's error table (docs/ukey-protocol.md §2)."""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, message shown to the user by the login page)
ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "请求格式不正确。"),
    "origin_not_allowed": (403, "该网站未被允许使用本机的 UKey 助手。"),
    "bad_host": (403, "请求的主机名不被接受（只接受 127.0.0.1 或 localhost）。"),
    "wrong_pin": (401, "PIN 码错误。"),
    "pin_locked": (423, "UKey 的 PIN 码已锁定，请联系证书颁发机构解锁。"),
    "no_token": (404, "未检测到 UKey，请插入 UKey 后重试。"),
    "several_tokens": (409, "检测到多个 UKey，请只插入一个，或选择要使用的 UKey。"),
    "no_signing_certificate": (404, "UKey 中没有可用于签名的证书。"),
    "token_error": (500, "UKey 操作失败，请重新插入 UKey 后重试。"),
    "not_found": (404, "请求的地址不存在。"),
    "method_not_allowed": (405, "不支持该请求方法。"),
}


class AgentError(Exception):
    """A failure answered as ``{"error": code, "message": ...}`` with the table's status.

    ``detail`` is for the log only (never sent, never contains the PIN); ``retries_left`` is sent
    with ``wrong_pin`` when the token says how many tries remain.
    """

    def __init__(
        self,
        code: str,
        *,
        message: str | None = None,
        retries_left: int | None = None,
        detail: str = "",
    ) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown agent error code {code!r}")
        super().__init__(code)
        self.code = code
        self.status, default_message = ERRORS[code]
        self.message = message or default_message
        self.retries_left = retries_left
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.retries_left is not None:
            body["retries_left"] = self.retries_left
        return body
