"""Chinese texts use full-width punctuation (，：；？！（）) everywhere: in Python literals,
templates and scripts, the translation catalogue's msgids, and the tests that quote them."""

from pathlib import Path

import pytest

from devtools.punctuation import files, fixed, full_width

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("登录请求无效, 请联系管理员。", "登录请求无效，请联系管理员。"),
        ("%(client)s 请求获取以下信息:", "%(client)s 请求获取以下信息："),
        ("确定要退出吗?", "确定要退出吗？"),
        ("客户端标识 (client_id, 留空则自动生成)", "客户端标识（client_id，留空则自动生成）"),
        ("确定删除操作员 %(name)s (%(phone)s) 吗?", "确定删除操作员 %(name)s（%(phone)s）吗？"),
        # English with a Chinese term, placeholders and calls stay as they are
        ("统一认证登录平台 (OpenID Connect provider) operations.", None),
        ("Hosted by: 上海市房屋管理局", None),
        ("{{ _('正在签名') }}", None),
        ("http://127.0.0.1:5000/登录", None),
    ],
)
def test_full_width(text: str, expected: str | None) -> None:
    assert full_width(text) == (expected or text)


def test_no_half_width_punctuation_in_chinese_texts() -> None:
    offending = [
        str(path.relative_to(ROOT)) for path in files(ROOT) if fixed(path) != path.read_text()
    ]
    assert offending == [], "run: python -m devtools.punctuation --fix"
