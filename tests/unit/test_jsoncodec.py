"""The provider's JSON codec reads and writes what the standard library's did: text stored or
sent before it (escapes, lone surrogates, NaN) reads back the same, and Flask's answers keep
Flask's rules."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from flask import Flask, jsonify

from idp import jsoncodec

STORED_BEFORE = [
    {"org_name": "上海示例审计事务所", "role": "operator", "org_id": 7},  # \u escapes
    {"name": "王\ud800"},  # a lone surrogate, escaped as "\ud800"
    {"nested": [1.5, None, True, {"a": []}], "count": 2**63 - 1},
]


@pytest.mark.parametrize("value", STORED_BEFORE)
def test_what_the_standard_library_wrote_reads_back(value: object) -> None:
    assert jsoncodec.loads(json.dumps(value)) == value
    assert jsoncodec.loads(json.dumps(value).encode()) == value


@pytest.mark.parametrize("value", STORED_BEFORE)
def test_what_it_writes_the_standard_library_reads(value: object) -> None:
    assert json.loads(jsoncodec.dumps(value)) == value
    assert json.loads(jsoncodec.dumpb(value)) == value


def test_nan_reads_as_before_and_what_is_not_json_is_refused() -> None:
    assert math.isnan(jsoncodec.loads("NaN"))
    with pytest.raises(ValueError):
        jsoncodec.loads('{"a": ')


def test_keys_that_are_not_strings_become_strings_and_big_integers_stay_whole() -> None:
    assert jsoncodec.loads(jsoncodec.dumps({1: "a"})) == {"1": "a"}
    assert json.loads(jsoncodec.dumps({"big": 2**70 + 1})) == {"big": 2**70 + 1}


def test_flask_answers_keep_flasks_rules() -> None:
    app = Flask(__name__)
    app.json = jsoncodec.JSONProvider(app)
    with app.app_context():
        answer = jsonify(
            z=1, a=datetime(2026, 12, 6, 9, 30, tzinfo=UTC), price=Decimal("1.10"), name="王小明"
        )
        odd = jsonify(name="王\ud800")
        assert app.json.loads(b'{"name": "\\ud800"}') == {"name": "\ud800"}

    assert answer.mimetype == "application/json"
    assert answer.get_data() == (
        '{"a":"Sun, 06 Dec 2026 09:30:00 GMT","name":"王小明","price":"1.10","z":1}\n'.encode()
    )
    assert json.loads(odd.get_data()) == {"name": "王\ud800"}
