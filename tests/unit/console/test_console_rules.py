"""Small rules of the org admin console and the join request: input cleaning, pages, the read-only
rule of 【修改】, labels, and the SMS texts of the new purposes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idp.console import views as console
from idp.orgs import operators, reviews
from idp.pagination import Page, check_page
from idp.sms.messages import render_message


@pytest.fixture(autouse=True)
def context(app):
    """Messages are translated lazily; an app context selects the (Chinese) catalog."""
    with app.test_request_context():
        yield


@pytest.mark.parametrize(
    ("total", "page", "pages", "has_prev", "has_next"),
    [
        (0, 1, 1, False, False),
        (20, 1, 1, False, False),
        (21, 1, 2, False, True),
        (21, 2, 2, True, False),
    ],
)
def test_page_counts(total, page, pages, has_prev, has_next):
    value = Page(items=[], page=page, per_page=20, total=total)

    assert (value.pages, value.has_prev, value.has_next) == (pages, has_prev, has_next)


@pytest.mark.parametrize(("page", "per_page"), [(0, 20), (-1, 20), (1, 0), (1, 101), (100_001, 20)])
def test_page_bounds(page, per_page):
    with pytest.raises(operators.IdpError) as refused:
        check_page(page, per_page)
    assert str(refused.value.message) == "分页参数无效"


def test_pages_within_bounds_pass():
    check_page(1, 1)
    check_page(100_000, 100)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [(" 张三 ", "张三"), ("阿卜杜·热合曼", "阿卜杜·热合曼"), ("王" * 100, "王" * 100)],
)
def test_names_are_stripped(raw, clean):
    assert operators.clean_name(raw) == clean


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "请输入姓名"),
        ("   ", "请输入姓名"),
        ("王" * 101, "姓名不能超过 100 字"),
        ("张\u200b三", "姓名含有无效字符"),
        ("张\n三", "姓名含有无效字符"),
        (None, "请输入姓名"),
        (123, "请输入姓名"),
    ],
)
def test_bad_names_are_refused(raw, message):
    with pytest.raises(operators.OperatorError) as refused:
        operators.clean_name(raw)
    assert (str(refused.value.message), refused.value.field) == (message, "name")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1380013800",
        "138001380000",
        "12800138000",
        "１３８００１３８０００",
        "13800138000\n0",
        None,
    ],
)
def test_bad_phones_are_refused(raw):
    with pytest.raises(operators.OperatorError) as refused:
        operators.clean_phone(raw)
    assert (str(refused.value.message), refused.value.field) == ("请输入 11 位手机号", "phone")


def test_phones_are_stripped():
    assert operators.clean_phone(" 13800138000\n") == "13800138000"


def test_reasons_become_one_line():
    assert reviews.clean_reason("  不是\r\n本单位  员工 ") == "不是 本单位 员工"


def test_the_audit_target_masks_and_bounds_whatever_was_submitted():
    assert operators.person_target("张三丰", "13800138000") == "张** 138****8000"
    assert len(operators.person_target("王" * 5000, "1" * 5000)) < 60


def test_update_refuses_any_field_but_phone_and_status_before_touching_anything(app):
    from idp import db
    from idp.identity.models import Organisation

    org = Organisation(id=-1, uscc="x", name="x")  # never loaded: the refusal comes first
    for extra in ({"name": "李四"}, {"session": "x"}, {"org": "x"}, {"membership_id": "1"}):
        with pytest.raises(operators.ReadOnlyFieldError) as refused:
            operators.update_operator(db.session(), org, 1, actor="test", **extra)
        assert str(refused.value.message) == "只能修改手机号码和操作员状态"
    db.session().rollback()


def test_a_posted_actor_cannot_replace_the_real_one(app):
    from idp.console.forms import OperatorEditForm

    with app.test_request_context(
        "/org/operators/1/edit",
        method="POST",
        data={"phone": "13800138000", "status": "active", "actor": "x", "name": "y"},
    ):
        extra = console.read_only_fields(OperatorEditForm(meta={"csrf": False}))

    assert extra == {"name": "y", "posted_actor": "x"}


def test_labels():
    assert console.created_by_label("org_admin:3") == "企业管理员"
    assert console.created_by_label("cli") == "平台管理员"
    assert console.created_by_label("test") == "test"
    assert console.console_time(datetime(2024, 1, 31, 17, 30, tzinfo=UTC)) == "2024-02-01 01:30"
    assert console.console_time(None) == "—"


@pytest.mark.parametrize(
    ("purpose", "params", "text"),
    [
        (
            "join",
            {"code": "123456"},
            "【统一认证登录平台】您正在申请成为企业操作员，验证码为123456，5分钟内有效。如非本人操作，请忽略本短信。",
        ),
        (
            "join_rejected",
            {"org_name": "示例公司", "reason": "非本单位员工"},
            "【统一认证登录平台】您申请成为示例公司操作员的请求未通过审核，原因：非本单位员工",
        ),
        (
            "operator_added",
            {"org_name": "示例公司"},
            "【统一认证登录平台】您已开通示例公司的操作员账号，请使用现有手机号和密码登录。",
        ),
    ],
)
def test_sms_texts_of_the_new_purposes(purpose, params, text):
    message = render_message(phone="13800138000", purpose=purpose, **params)

    assert message.text == text
    assert message.code == params.get("code", "")
