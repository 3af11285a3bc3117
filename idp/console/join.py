"""The public join request (用户审核, applicant side): staff enter their organisation's USCC,
their name and phone, prove the phone with an SMS code and pass the real-name check; the request
then waits for the org admin (``/org/reviews``)."""

from __future__ import annotations

import contextlib

from flask import Blueprint, Response, render_template, request

from idp import db, web
from idp.auth import sms_codes, sms_requests
from idp.auth.client import Client, current_client, ensure_browser_id
from idp.auth.errors import SmsCodeError
from idp.console.forms import JoinForm
from idp.errors import IdpError
from idp.orgs import reviews

bp = Blueprint("join", __name__, template_folder="templates")


@bp.route("/join", methods=["GET", "POST"])
def apply() -> tuple[str, int]:
    form = JoinForm()
    error, status = "", 200
    ensure_browser_id()
    if form.validate_on_submit():
        phone, client = form.phone.data, current_client()
        try:
            sms_codes.check_code(
                phone, purpose=reviews.JOIN_PURPOSE, code=form.sms_code.data, client=client
            )
            reviews.submit_join_request(
                db.session(), uscc=form.uscc.data, name=form.name.data, phone=phone
            )
        except IdpError as failure:
            error, status = web.refuse(failure, form)
        else:
            # Committed before the code is used up: on SQLite the request's pending write holds
            # the database lock that the SQL store's own connection would wait for.
            db.session().commit()
            use_code(phone, client)
            return render_template("join/submitted.html"), 200
    elif request.method == "POST":
        status = 400
    return render_template("join/apply.html", form=form, error=error), status


def use_code(phone: str, client: Client) -> None:
    """The code was right when checked; a parallel submission that used it first changes
    nothing (it proved the same phone, and the second request was refused as a duplicate)."""
    with contextlib.suppress(SmsCodeError):
        sms_codes.consume_code(phone, purpose=reviews.JOIN_PURPOSE, client=client)


@bp.post("/join/sms-code")
def send_sms_code() -> tuple[Response, int]:
    """发送验证码 of the join page (the same limits as login codes)."""
    return sms_requests.answer(
        lambda phone: reviews.request_join_code(phone=phone, client=current_client())
    )
