"""Errors of the authentication domain; each carries the message shown next to its field."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from idp.errors import IdpError


class LoginFailedError(IdpError):
    code = "login_failed"
    status = 400
    message = _l("手机号或密码错误")
    field = "password"


class AccountLockedError(LoginFailedError):
    code = "account_locked"
    status = 429
    message = _l("密码错误次数过多, 账户已锁定, 请稍后再试")


class TooManyLoginAttemptsError(LoginFailedError):
    """Too many login attempts from one network, across phones; says nothing about the phone."""

    code = "too_many_attempts"
    status = 429
    message = _l("登录尝试过于频繁, 请稍后再试")


class AccountUnusableError(LoginFailedError):
    code = "account_disabled"
    status = 403
    message = _l("账户已停用, 请联系企业管理员")


class SmsCodeError(LoginFailedError):
    code = "sms_code_invalid"
    message = _l("验证码错误或已过期")
    field = "sms_code"


class SmsCodeTriesExceededError(SmsCodeError):
    code = "sms_code_tries_exceeded"
    message = _l("验证码错误次数过多, 请重新获取")


class SmsRateLimitedError(IdpError):
    code = "sms_rate_limited"
    status = 429
    message = _l("发送过于频繁, 请稍后再试")

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LoginRequiredError(IdpError):
    code = "login_required"
    status = 401
    message = _l("请先登录")


class WrongCurrentPasswordError(LoginFailedError):
    code = "wrong_password"
    message = _l("原密码错误")
    field = "current_password"
