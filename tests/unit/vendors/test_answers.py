"""How the vendors' common answer shapes are read, without HTTP: what is accepted, and every
unreadable or refused answer raising the caller's error with the vendor code in ``detail``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from idp.errors import IdpError
from idp.vendors import aliyun, tencent
from idp.vendors.client import vendor_message


class CallerError(IdpError):
    """Stands for the caller's domain error (``SmsError``, ``RealNameUnavailableError``)."""


def response(status: int, body: Any) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return answer


# --- Aliyun ------------------------------------------------------------------------------------


def test_aliyun_answer_is_read_also_on_http_errors():
    answer = {"Code": "Throttling", "Message": "slow down"}
    assert aliyun.parse_answer(response(400, answer), error=CallerError) == answer


@pytest.mark.parametrize(
    ("body", "detail"),
    [(b"<html>", "answer is not JSON"), (["OK"], "answer is not a JSON object")],
)
def test_aliyun_unreadable_answers_raise(body: Any, detail: str):
    with pytest.raises(CallerError) as error:
        aliyun.parse_answer(response(500, body), error=CallerError)
    assert error.value.detail == f"aliyun HTTP 500: {detail}"


def test_aliyun_http_200_and_code_ok_is_a_success():
    aliyun.require_ok(200, {"Code": "OK", "Message": "OK"}, error=CallerError)


@pytest.mark.parametrize(
    ("status", "answer", "detail"),
    [
        (
            200,
            {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "流控"},
            "Code=isv.BUSINESS_LIMIT_CONTROL: 流控",
        ),
        (400, {"Code": "OK", "Message": "OK"}, "Code=OK: OK"),
        (200, {"Message": "no code"}, "Code=None: no code"),
        (200, {"Code": "Throttling", "Message": None}, "Code=Throttling: "),
        (200, {"Code": "Throttling", "Message": "x" * 500}, "Code=Throttling: " + "x" * 200),
    ],
)
def test_aliyun_anything_but_http_200_and_code_ok_raises(
    status: int, answer: dict[str, Any], detail: str
):
    with pytest.raises(CallerError) as error:
        aliyun.require_ok(status, answer, error=CallerError)
    assert error.value.detail == f"aliyun HTTP {status} {detail}"


# --- Tencent Cloud -----------------------------------------------------------------------------


def test_tencent_answer_is_the_response_object():
    inner = {"Result": "0", "RequestId": "r"}
    assert tencent.parse_answer(response(200, {"Response": inner}), error=CallerError) == inner


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (502, {"Response": {"Result": "0"}}, "tencent HTTP 502"),
        (200, b"<html>", "tencent answer is not JSON"),
        (200, ["Response"], "tencent answer has no Response object"),
        (200, {"Result": "0"}, "tencent answer has no Response object"),
    ],
)
def test_tencent_unreadable_answers_raise(status: int, body: Any, detail: str):
    with pytest.raises(CallerError) as error:
        tencent.parse_answer(response(status, body), error=CallerError)
    assert error.value.detail == detail


def test_tencent_answer_without_error_passes():
    tencent.require_no_error({"Result": "0", "Error": "not an object"}, error=CallerError)


@pytest.mark.parametrize(
    ("message", "shown"), [("x" * 500, "x" * 200), (None, ""), ("签名错误", "签名错误")]
)
def test_tencent_error_raises_with_its_code(message: Any, shown: str):
    answer = {"Result": "0", "Error": {"Code": "AuthFailure.SignatureFailure", "Message": message}}
    with pytest.raises(CallerError) as error:
        tencent.require_no_error(answer, error=CallerError)
    assert error.value.detail == f"tencent AuthFailure.SignatureFailure: {shown}"


# --- vendor messages ---------------------------------------------------------------------------


def test_vendor_message_is_bounded():
    assert vendor_message(None) == ""
    assert vendor_message("x" * 1000) == "x" * 200
    assert vendor_message(42) == "42"
