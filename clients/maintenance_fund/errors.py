"""The one error type of the demo relying party, rendered as a Chinese error page."""

from __future__ import annotations

# A sentence for every error code a provider sends back (RFC 6749 §4.1.2.1 and §5.2, OIDC Core
# §3.1.2.6), plus the codes this app raises itself. The page shows the sentence and the code;
# the provider's error_description is technical and goes to the log only.
MESSAGES: dict[str, str] = {
    "access_denied": "您已取消登录，或您选择的身份不能使用本系统。如需继续，请重新登录。",
    "login_required": "统一认证登录平台要求您先登录。",
    "interaction_required": "统一认证登录平台需要您进行操作后才能继续。",
    "consent_required": "统一认证登录平台需要您的授权同意。",
    "account_selection_required": "请在统一认证登录平台选择要使用的身份。",
    "invalid_request": "登录请求无效。",
    "invalid_scope": "请求的权限范围无效。",
    "unauthorized_client": "本系统未获准使用该登录方式。",
    "unsupported_response_type": "统一认证登录平台不支持本系统的登录方式，请联系本系统管理员。",
    "invalid_request_uri": "登录请求无效，请重新登录。",
    "invalid_request_object": "登录请求无效，请重新登录。",
    "request_not_supported": "统一认证登录平台不支持本系统的登录请求，请联系本系统管理员。",
    "request_uri_not_supported": "统一认证登录平台不支持本系统的登录请求，请联系本系统管理员。",
    "registration_not_supported": "统一认证登录平台不支持本系统的登录请求，请联系本系统管理员。",
    "unsupported_grant_type": "统一认证登录平台不支持本系统的令牌请求，请联系本系统管理员。",
    "invalid_client": "统一认证登录平台无法识别本系统（客户端认证失败）。",
    "invalid_grant": "登录已失效，需要重新登录。",
    "server_error": "统一认证登录平台内部错误，请稍后再试。",
    "temporarily_unavailable": "统一认证登录平台暂时不可用，请稍后再试。",
    "mismatching_state": "登录状态校验失败（state 不匹配），请重新登录。",
    "invalid_id_token": "ID 令牌校验失败，已拒绝本次登录。",
    "missing_id_token": "统一认证登录平台没有返回 ID 令牌，已拒绝本次登录。",
    "issuer_mismatch": "授权响应来自未知的签发方（iss 不匹配），已拒绝本次登录。",
    "discovery_mismatch": "统一认证登录平台的配置信息与本系统设置的签发方不一致。",
    "provider_unreachable": "无法连接统一认证登录平台，请稍后再试。",
    "untrusted_initiator": "发起登录的平台不受本系统信任。",
    "invalid_target": "登录后要打开的地址不属于本系统。",
    "csrf_failed": "页面已过期或请求来源不明（CSRF 校验失败），请返回首页重试。",
    "invalid_logout_state": "退出登录的返回状态无效。",
    "no_refresh_token": "本次登录没有刷新令牌，需要重新登录。",
    "login_expired": "登录已过期，需要重新登录。",
    "org_admin_required": "仅企业管理员可以使用系统管理功能。",
    "api_failed": "统一认证登录平台的管理接口返回了无法识别的结果，请稍后再试。",
}


class RpError(Exception):
    """A failure the user must see; ``code`` is the OAuth error code or one of our own."""

    def __init__(self, code: str, *, description: str | None = None, status: int = 400) -> None:
        self.code = code
        self.description = description
        self.status = status
        super().__init__(f"{code}: {description or ''}")

    @property
    def message(self) -> str:
        """Chinese text for the page; unknown provider codes get a generic sentence."""
        return MESSAGES.get(self.code, "登录失败。")
