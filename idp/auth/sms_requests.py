"""The 发送验证码 button's endpoint, shared by the login page and the join page: the phone is
checked, the code sent, and the answer is JSON for sms_code.js in every case."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, jsonify
from flask_babel import gettext as _

from idp import web
from idp.auth.errors import SmsRateLimitedError
from idp.auth.forms import SmsCodeRequestForm
from idp.auth.sms_codes import RESEND_INTERVAL
from idp.errors import IdpError


def answer(send: Callable[[str], None]) -> tuple[Response, int]:
    """Validate the posted phone and call ``send(phone)``; the page's script reads the JSON."""
    form = SmsCodeRequestForm()
    if not form.validate():
        message = next(iter(form.phone.errors), _("请输入 11 位手机号"))
        return jsonify(error="invalid_phone", error_description=message, field="phone"), 400
    try:
        send(form.phone.data)
    except SmsRateLimitedError as error:
        body = jsonify(
            error=error.code, error_description=str(error.message), retry_after=error.retry_after
        )
        body.headers["Retry-After"] = str(error.retry_after)
        return body, 429
    except IdpError as error:  # gateway or store down (503)
        web.rollback()
        return jsonify(error=error.code, error_description=str(error.message)), error.status
    retry_after = int(RESEND_INTERVAL.total_seconds())
    return jsonify(sent=True, retry_after=retry_after, message=_("验证码已发送，5 分钟内有效")), 200
