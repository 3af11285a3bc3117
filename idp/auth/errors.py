"""Errors of the authentication domain; each carries the message shown next to its field."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.errors import IdpError

LOCAL_TIME = ZoneInfo("Asia/Shanghai")  # the time the person's clock shows


class LoginFailedError(IdpError):
    code = "login_failed"
    status = 400
    message = _l("手机号或密码错误")
    field = "password"


class AccountLockedError(LoginFailedError):
    code = "account_locked"
    status = 429
    message = _l("密码错误次数过多，账户已锁定，请稍后再试")

    @classmethod
    def until(cls, end: datetime, *, field: str) -> AccountLockedError:
        """The lock with its end time, as the person's clock shows it (Asia/Shanghai)."""
        local = end.astimezone(LOCAL_TIME).strftime("%H:%M")
        return cls(_("密码错误次数过多，账户已锁定，请于 %(time)s 后再试", time=local), field=field)


class TooManyLoginAttemptsError(LoginFailedError):
    """Too many login attempts from one network, across phones; says nothing about the phone."""

    code = "too_many_attempts"
    status = 429
    message = _l("登录尝试过于频繁，请稍后再试")


class AccountUnusableError(LoginFailedError):
    """No active membership left: said only to someone who proved the phone and the password."""

    code = "account_disabled"
    status = 403
    message = _l("账户已停用，请联系本单位管理员")


class AccountDeletedError(AccountUnusableError):
    code = "account_deleted"
    message = _l("账户已删除，请联系本单位管理员")


class OrgSuspendedError(AccountUnusableError):
    """Every organisation of the account is suspended by the platform (暂停使用)."""

    code = "org_suspended"
    message = _l("本机构已被平台暂停使用，请联系平台管理员")


class SmsCodeError(LoginFailedError):
    code = "sms_code_invalid"
    message = _l("验证码错误或已过期")
    field = "sms_code"


class SmsCodeTriesExceededError(SmsCodeError):
    code = "sms_code_tries_exceeded"
    message = _l("验证码错误次数过多，请重新获取")


class SmsRateLimitedError(IdpError):
    code = "sms_rate_limited"
    status = 429
    message = _l("发送过于频繁，请稍后再试")

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
