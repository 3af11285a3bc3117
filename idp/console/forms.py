"""Forms of the org admin console (操作员管理, 用户审核) and of the public join request."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from idp.auth.forms import phone_validators
from idp.forms import choice_of, strip, upper
from idp.orgs.operators import MAX_NAME
from idp.orgs.reviews import MAX_REASON

# --- 操作员管理 and 用户审核 (org admin console) ----------------------------------------------------

OPERATOR_STATUS_CHOICES = [SelectChoice("active", _l("启用")), SelectChoice("disabled", _l("停用"))]
name_validators = [
    DataRequired(message=_l("请输入姓名")),
    Length(max=MAX_NAME, message=_l("姓名不能超过 %(n)d 字", n=MAX_NAME)),
]


class OperatorAddForm(FlaskForm):
    """【增加】 (docs/design.md, manual §1.3 ②): the name as on the ID card and the phone registered to it."""

    name = StringField(_l("姓名（身份证姓名）"), filters=[strip], validators=name_validators)
    phone = StringField(
        _l("手机号码（身份证绑定的手机号码）"), filters=[strip], validators=phone_validators
    )


class OperatorEditForm(FlaskForm):
    """【修改】: only the phone and the status; the page shows everything else read-only."""

    phone = StringField(
        _l("手机号码（身份证绑定的手机号码）"), filters=[strip], validators=phone_validators
    )
    status = RadioField(
        _l("操作员状态"),
        choices=OPERATOR_STATUS_CHOICES,
        validate_choice=False,
        validators=[choice_of(_l("请选择操作员状态"))],
    )


class ConfirmForm(FlaskForm):
    """【删除】 and 通过: nothing to fill in but the CSRF token."""


class RejectForm(FlaskForm):
    """驳回 with the reason the applicant receives by SMS."""

    reason = TextAreaField(
        _l("驳回原因"),
        filters=[strip],
        validators=[
            DataRequired(message=_l("请填写驳回原因")),
            Length(max=MAX_REASON, message=_l("驳回原因不能超过 %(n)d 字", n=MAX_REASON)),
        ],
    )


# --- the public join request -----------------------------------------------------------------


class JoinForm(FlaskForm):
    """Staff apply to become an operator of their organisation (用户审核). Field names of the
    phone and code as on the login form (docs/design.md §7)."""

    uscc = StringField(
        _l("统一社会信用代码"),
        filters=[upper],
        validators=[
            DataRequired(message=_l("请输入统一社会信用代码")),
            Regexp(r"^[0-9A-Z]{18}\Z", message=_l("统一社会信用代码为 18 位数字或大写字母")),
        ],
    )
    name = StringField(_l("姓名（身份证姓名）"), filters=[strip], validators=name_validators)
    phone = StringField(
        _l("手机号码（身份证绑定的手机号码）"), filters=[strip], validators=phone_validators
    )
    sms_code = StringField(
        _l("短信验证码"),
        filters=[strip],
        validators=[
            DataRequired(message=_l("请输入验证码")),
            Regexp(r"^[0-9]{6}\Z", message=_l("验证码为 6 位数字")),
        ],
    )
