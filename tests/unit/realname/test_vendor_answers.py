"""How the cloud adapters read vendor answers, without HTTP: every documented code, and the
shapes that must never become a verdict (the contract suite covers the wire; the answer shapes
common to both products are in ``tests/unit/vendors``)."""

from __future__ import annotations

from typing import Any

import pytest

from idp.realname import aliyun, tencent
from idp.realname.carrier import scrub
from idp.realname.interface import RealNameUnavailableError, Verdict

# --- Tencent CheckPhoneAndName ----------------------------------------------------------------


@pytest.mark.parametrize(("result", "verdict"), [("0", Verdict.MATCH), ("1", Verdict.MISMATCH)])
def test_tencent_charged_codes_are_verdicts(result: str, verdict: Verdict):
    assert tencent.verdict_of({"Result": result, "Description": "…"}) is verdict


@pytest.mark.parametrize(
    ("result", "meaning"),
    [
        ("-1", "查无记录"),
        ("-2", "引擎未知错误"),
        ("-3", "引擎服务异常"),
        ("-4", "姓名校验不通过"),
        ("-5", "手机号码不合法"),
        ("-6", "认证次数超过当日限制"),
        ("-13", "该号段不支持验证"),
    ],
)
def test_tencent_uncharged_codes_are_unavailable_with_their_meaning(result: str, meaning: str):
    with pytest.raises(RealNameUnavailableError) as error:
        tencent.verdict_of({"Result": result, "Description": "vendor text"})
    assert error.value.detail.startswith(f"tencent Result={result}: {meaning}")


@pytest.mark.parametrize("result", [0, 1, None, "", " 0", "00", "true"])
def test_tencent_results_that_are_not_documented_strings_are_unavailable(result: Any):
    with pytest.raises(RealNameUnavailableError):
        tencent.verdict_of({"Result": result})


def test_tencent_error_wins_over_a_result():
    answer = {"Result": "0", "Error": {"Code": "FailedOperation.UnKnown", "Message": "x" * 500}}
    with pytest.raises(RealNameUnavailableError) as error:
        tencent.verdict_of(answer)
    assert error.value.detail == "tencent FailedOperation.UnKnown: " + "x" * 200


def test_tencent_request_body_is_compact_utf8_json():
    assert tencent.request_body(name="张三", phone="13800138000") == (
        '{"Mobile":"13800138000","Name":"张三"}'.encode()
    )


# --- Aliyun TwoElementsVerification -----------------------------------------------------------


def ok(data: Any) -> dict[str, Any]:
    return {"Code": "OK", "Message": "OK", "RequestId": "r", "Data": data}


@pytest.mark.parametrize(
    ("value", "verdict"),
    [(1, Verdict.MATCH), (0, Verdict.MISMATCH), ("1", Verdict.MATCH), ("0", Verdict.MISMATCH)],
)
def test_aliyun_is_consistent_1_and_0_are_verdicts(value: Any, verdict: Verdict):
    assert aliyun.verdict_of(200, ok({"IsConsistent": value})) is verdict


def test_aliyun_is_consistent_2_is_no_record():
    with pytest.raises(RealNameUnavailableError) as error:
        aliyun.verdict_of(200, ok({"IsConsistent": 2}))
    assert "IsConsistent=2" in error.value.detail


@pytest.mark.parametrize(
    "data",
    [
        {"IsConsistent": True},
        {"IsConsistent": False},
        {"IsConsistent": 1.0},
        {"IsConsistent": 3},
        {"IsConsistent": None},
        {},
        None,
        [{"IsConsistent": 1}],
    ],
)
def test_aliyun_data_without_a_usable_code_is_unavailable(data: Any):
    with pytest.raises(RealNameUnavailableError) as error:
        aliyun.verdict_of(200, ok(data))
    assert "IsConsistent" in error.value.detail


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (200, {"Code": "RequestFrequencyLimit", "Message": "频繁", "Data": {"IsConsistent": 1}}),
        (400, ok({"IsConsistent": 1})),
        (200, {"Message": "no code", "Data": {"IsConsistent": 1}}),
    ],
)
def test_aliyun_anything_but_http_200_and_code_ok_is_unavailable(status: int, answer: Any):
    with pytest.raises(RealNameUnavailableError) as error:
        aliyun.verdict_of(status, answer)
    assert error.value.detail.startswith(f"aliyun HTTP {status} Code={answer.get('Code')}")


# --- masking ----------------------------------------------------------------------------------


def test_scrub_masks_echoed_name_and_phone():
    text = "张三 (13800138000) is rate limited; 13800138000 again"
    assert scrub(text, name="张三", phone="13800138000") == (
        "张* (138****8000) is rate limited; 138****8000 again"
    )


def test_scrub_leaves_text_alone_for_blank_inputs():
    assert scrub("a b", name=" ", phone="") == "a b"
