"""``logs.mask``: phones and labelled names are masked in any text, whichever of the two (or
neither) it holds; a text with neither comes back unchanged."""

from __future__ import annotations

import pytest

from idp.logs import mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("POST oidc.token 200", "POST oidc.token 200"),
        ("to 13900139000", "to 139****9000"),
        ("to +8613900139000.", "to +86139****9000."),
        ("姓名: 欧阳娜娜", "姓名: 欧***"),  # punctuation: data
        ("name='张三丰'", "name='张**'"),
        ("姓名：张三 phone 13812345678", "姓名：张* phone 138****5678"),  # punctuation: data
        # Not a phone: ten digits, twelve digits without a +86 prefix, or a second digit of 1–2.
        ("id 1390013900", "id 1390013900"),
        ("id 139001390001", "id 139001390001"),
        ("id 12900139000", "id 12900139000"),
        # A label without a Chinese name after it, and a name without a label.
        ("client_name=rp", "client_name=rp"),
        ("张三丰 logged in", "张三丰 logged in"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert mask(text) == masked
