"""The public join request (用户审核, applicant side): staff enter their organisation's USCC,
their name and phone, prove the phone with an SMS code and pass the real-name check; the request
then waits for the org admin (``/org/reviews``)."""

from __future__ import annotations

import contextlib

from flask import Blueprint, Response, jsonify, render_template, request
from flask_babel import gettext as _

from idp import db
from idp.auth import sms_codes
from idp.auth.errors import SmsCodeError, SmsRateLimitedError
from idp.auth.forms import SmsCodeRequestForm
from idp.errors import IdpError
from idp.orgs import reviews
from idp.orgs.console import refuse
from idp.orgs.forms import JoinForm
from idp.security import client_ip

bp = Blueprint("join", __name__, template_folder="templates")


@bp.route("/join", methods=["GET", "POST"])
def apply() -> tuple[str, int]:
    form = JoinForm()
    error, status = "", 200
    if form.validate_on_submit():
        phone = form.phone.data
        try:
            sms_codes.check_code(phone, purpose=reviews.JOIN_PURPOSE, code=form.sms_code.data)
            reviews.submit_join_request(
                db.session(), uscc=form.uscc.data, name=form.name.data, phone=phone
            )
        except IdpError as failure:
            error, status = refuse(failure, form)
        else:
            # Committed before the code is used up: on SQLite the request's pending write holds
            # the database lock that the SQL store's own connection would wait for.
            db.session().commit()
            use_code(phone)
            return render_template("join/submitted.html"), 200
    elif request.method == "POST":
        status = 400
    return render_template("join/apply.html", form=form, error=error), status


def use_code(phone: str) -> None:
    """The code was right when checked; a parallel submission that used it first changes
    nothing (it proved the same phone, and the second request was refused as a duplicate)."""
    with contextlib.suppress(SmsCodeError):
        sms_codes.consume_code(phone, purpose=reviews.JOIN_PURPOSE)


@bp.post("/join/sms-code")
def send_sms_code() -> tuple[Response, int]:
    """发送验证码 (sms_code.js reads the JSON answer)."""
    form = SmsCodeRequestForm()
    if not form.validate():
        message = next(iter(form.phone.errors), _("请输入 11 位手机号"))
        return jsonify(error="invalid_phone", error_description=message, field="phone"), 400
    try:
        reviews.request_join_code(phone=form.phone.data, ip=client_ip())
    except SmsRateLimitedError as error:
        body = jsonify(
            error=error.code, error_description=str(error.message), retry_after=error.retry_after
        )
        body.headers["Retry-After"] = str(error.retry_after)
        return body, 429
    except IdpError as error:
        db.session().rollback()
        return jsonify(error=error.code, error_description=str(error.message)), error.status
    return jsonify(sent=True, retry_after=60, message=_("验证码已发送, 5 分钟内有效")), 200
