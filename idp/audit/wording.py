"""Audit events in words for the people who read them (操作日志 and every audit view): what
happened, to whom, and how it ended, never ``orgs.operator_added`` or ``membership:3``.

Targets are recorded already masked (``李* 138****8000``); the technical prefix in front of
them (``membership:3``, ``org:5``) is an id for operators' queries and is left out here. A
result is the error code of a refusal; it is told with that error's own message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.errors import IdpError

ACTIONS = {
    "auth.login_succeeded": _l("操作员登录"),
    "auth.login_failed": _l("操作员登录失败"),
    "auth.logged_out": _l("退出登录"),
    "auth.session_ended": _l("在我的账户中退出登录会话"),
    "auth.sms_code_requested": _l("获取短信验证码"),
    "auth.password_changed": _l("修改密码"),
    "auth.password_change_failed": _l("修改密码失败"),
    "auth.password_change_notice_sent": _l("短信通知密码已修改"),
    "auth.password_reset_code_requested": _l("忘记密码获取验证码"),
    "auth.password_reset": _l("忘记密码重置密码"),
    "auth.password_reset_failed": _l("忘记密码重置失败"),
    "auth.cert_login_succeeded": _l("UKey 登录"),
    "auth.cert_login_failed": _l("UKey 登录失败"),
    "orgs.operator_added": _l("新增操作员"),
    "orgs.operator_updated": _l("修改操作员"),
    "orgs.operator_deleted": _l("删除操作员"),
    "orgs.operator_notice_sent": _l("短信通知操作员"),
    "orgs.initial_password_sent": _l("短信发送初始密码"),
    "orgs.join_code_requested": _l("加入申请获取验证码"),
    "orgs.join_requested": _l("提交加入申请"),
    "orgs.join_approved": _l("通过加入申请"),
    "orgs.join_rejected": _l("驳回加入申请"),
    "orgs.join_expired": _l("加入申请过期"),
    "orgs.registered": _l("机构注册"),
    "orgs.realname_limited": _l("手机二要素校验次数过多，已拒绝"),
    "orgs.realname_abuse_alert": _l("警告：手机二要素校验被频繁拒绝"),
    "orgs.registration_refused": _l("机构注册未成功"),
    "orgs.org_added": _l("平台添加机构"),
    "orgs.org_suspended": _l("平台暂停机构使用"),
    "orgs.org_reactivated": _l("平台恢复机构使用"),
    "orgs.legacy_bound": _l("绑定原系统账号"),
    "orgs.legacy_bind_failed": _l("绑定原系统账号失败"),
    "orgs.legacy_imported": _l("导入原系统账号"),
    "oidc.code_issued": _l("登录应用"),
    "oidc.code_redeemed": _l("应用使用授权码"),
    "oidc.consent": _l("授权确认"),
    "oidc.consent_revoked": _l("撤销对应用的授权"),
    "oidc.token_revoked": _l("应用撤销令牌"),
    "oidc.tokens_ended_at_logout": _l("退出登录结束应用令牌"),
    "oidc.code_reused": _l("授权码被重复使用，已撤销令牌"),
    "oidc.refresh_token_reused": _l("刷新令牌被重复使用，已撤销令牌"),
    "oidc.refresh_token_reused_within_interval": _l("应用重复刷新令牌"),
    "oidc.issuance_refused": _l("拒绝签发令牌"),
    "oidc.interaction_refused": _l("拒绝他人的登录请求"),
    "auth.logout_confirmation_declined": _l("未确认应用发起的退出登录"),
    "oidc.backchannel_logout_delivered": _l("已通知应用退出登录"),
    "oidc.backchannel_logout_retrying": _l("通知应用退出登录失败，将重试"),
    "oidc.backchannel_logout_failed": _l("通知应用退出登录失败"),
    "oidc.client_registered": _l("注册应用"),
    "oidc.client_updated": _l("修改应用"),
    "oidc.client_secret_rotated": _l("重置应用密钥"),
    "oidc.client_removed": _l("删除应用"),
    "oidc.client_disabled": _l("停用应用"),
    "oidc.client_enabled": _l("启用应用"),
    "oidc.initial_token_issued": _l("签发初始访问令牌"),
    "oidc.initial_token_revoked": _l("撤销初始访问令牌"),
    "oidc.registration_refused": _l("应用动态注册被拒绝"),
    "admin.account_added": _l("添加平台管理员"),
    "admin.account_removed": _l("删除平台管理员"),
    "admin.login_succeeded": _l("平台管理员登录"),
    "admin.login_failed": _l("平台管理员登录失败"),
    "admin.totp_failed": _l("平台管理员动态验证码错误"),
    "admin.totp_enrolled": _l("平台管理员绑定身份验证器"),
    "admin.recovery_codes_issued": _l("平台管理员生成恢复码"),
    "admin.logout": _l("平台管理员退出登录"),
    "sms.delivered": _l("短信已发送"),
    "sms.delivery_retrying": _l("短信发送失败，将重试"),
    "sms.delivery_failed": _l("短信发送失败"),
    "sms.not_sent": _l("短信未发送"),
}

# Results that are not refusals: what the event's outcome was.
OUTCOMES = {
    "success": _l("成功"),
    "queued": _l("已排队发送"),
    "granted": _l("已同意"),
    "denied": _l("已拒绝"),
    "tokens_revoked": _l("已撤销相关令牌"),
    "family_revoked": _l("已撤销相关令牌"),
    "same_successor": _l("返回同一新令牌"),
    "revoked": _l("授权已撤销"),
    "expired": _l("已过期"),
    "no_account": _l("手机号无账户"),
    "already_bound": _l("该账号已被绑定"),
    "unknown_account": _l("原系统账号不存在"),
    "mismatch": _l("原系统账号与本机构不符"),
    "client_not_allowed": _l("该平台不支持此身份"),
    "wrong_secret": _l("OTP 或密钥错误"),
    "code_reused": _l("OTP 已使用过"),
    "locked": _l("错误次数过多，已暂时锁定"),
    "unconfirmed": _l("未通过的校验过多"),
    "org": _l("本机构今日校验次数已满"),
    "phone": _l("该手机号今日校验次数已满"),
    "ip": _l("该网络校验次数过多"),
    "alert": _l("需要关注"),
    "invalid_token": _l("令牌无效、已过期、已撤销或已用完"),
    "invalid_client_metadata": _l("应用信息不符合要求"),
    "invalid_redirect_uri": _l("回调地址不符合要求"),
}

# "membership:3 李* 138****8000" → "李* 138****8000"; "org:5" → "".
TECHNICAL_ID = re.compile(
    r"^(?:membership|account|org|code|family|session|legacy|initial_token):\S*\s*"
)


def error_messages() -> dict[str, str]:
    """Every refusal's code with its message, from the error classes themselves."""
    found: dict[str, str] = {}
    pending: list[type[IdpError]] = [IdpError]
    while pending:
        error = pending.pop()
        found.setdefault(error.code, str(error.message))
        pending.extend(error.__subclasses__())
    return found


def action_words(action: str) -> str:
    words = ACTIONS.get(action)
    return str(words) if words is not None else _("其他操作")


def target_words(target: str, client_names: Mapping[str, str] | None = None) -> str:
    """The target without its technical id; a relying party by its name when known."""
    if target.startswith("client:"):
        client_id = target.removeprefix("client:")
        return (client_names or {}).get(client_id, client_id)
    return TECHNICAL_ID.sub("", target).strip()


def result_words(result: str) -> str:
    if result in OUTCOMES:
        return str(OUTCOMES[result])
    if result.startswith("http_"):
        return _("应用返回 HTTP %(status)s", status=result.removeprefix("http_"))
    return error_messages().get(result, _("失败"))


def describe(action: str, target: str, client_names: Mapping[str, str] | None = None) -> str:
    """ "新增操作员 李* 138****8000": the action and whom it concerned."""
    words, whom = action_words(action), target_words(target, client_names)
    return f"{words} {whom}" if whom else words
