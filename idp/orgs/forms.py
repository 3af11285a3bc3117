"""Forms of the registration wizard (journey 1), the org admin console (操作员管理, 用户审核) and
the public join request. Choices (org types, relying parties) of the wizard are set by the view
from what the organisation may still register."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    Field,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    ValidationError,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from idp.auth.forms import phone_validators

# Mobile (11 digits) or landline with an optional area code and extension: 021-62345678,
# 02112345678, 62345678, 0571-8765432-123. ASCII digits only, \Z so no trailing newline passes.
CONTACT_PHONE_PATTERN = (
    r"^(?:1[3-9][0-9]{9}|(?:0[1-9][0-9]{1,2}-?)?[2-9][0-9]{6,7}(?:-[0-9]{1,6})?)\Z"
)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def choice_of(message: Any) -> Any:
    """A validator: the value (or every value) is one of the field's choices; WTForms' own
    check answers in English, this one with ``message``."""

    def check(form: FlaskForm, field: Field) -> None:
        # A choice is a (value, label) pair or a SelectChoice; either iterates value first.
        allowed = {str(next(iter(choice))) for choice in field.choices or []}
        values = field.data if isinstance(field.data, list) else [field.data]
        if not values or not all(str(v) in allowed for v in values):
            raise ValidationError(str(message))

    return check


class ChooseTypeForm(FlaskForm):
    """选择注册类型."""

    org_type = RadioField(
        _l("注册类型"),
        choices=[],
        validate_choice=False,
        validators=[choice_of(_l("请选择注册类型"))],
    )


class RegistrationForm(FlaskForm):
    """否: a new registration. ``uscc`` is shown read-only; the server ignores what is posted."""

    name = StringField(
        _l("单位名称"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入单位名称")),
            Length(max=200, message=_l("单位名称不能超过 200 字")),
        ],
    )
    uscc = StringField(_l("统一社会信用代码"), render_kw={"readonly": True})
    contact_person = StringField(
        _l("联系人"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入联系人")),
            Length(max=100, message=_l("联系人不能超过 100 字")),
        ],
    )
    contact_phone = StringField(
        _l("联系电话"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入联系电话")),
            Regexp(
                CONTACT_PHONE_PATTERN,
                message=_l("请输入正确的手机号或固定电话 (如 021-62345678)"),
            ),
        ],
    )
    address = StringField(
        _l("单位地址"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入单位地址")),
            Length(max=200, message=_l("单位地址不能超过 200 字")),
        ],
    )
    platforms = SelectMultipleField(
        _l("注册平台"),
        choices=[],
        validate_choice=False,
        validators=[choice_of(_l("请选择要注册的平台"))],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


class BindForm(FlaskForm):
    """是: the legacy account and its current OTP code, or its key (one of the two)."""

    client_id = SelectField(
        _l("平台"), choices=[], validate_choice=False, validators=[choice_of(_l("请选择平台"))]
    )
    legacy_account = StringField(
        _l("原系统账号"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入原系统账号")),
            Length(max=100, message=_l("账号或动态码错误")),
        ],
    )
    otp_code = StringField(
        _l("动态码 (OTP)"),
        filters=[_strip],
        validators=[Optional(), Regexp(r"^[0-9]{6}\Z", message=_l("动态码为 6 位数字"))],
    )
    legacy_key = PasswordField(
        _l("密钥"),
        filters=[_strip],
        validators=[Optional(), Length(max=200, message=_l("账号或动态码错误"))],
    )

    def validate(self, extra_validators: Any = None) -> bool:
        # Not a validate_otp_code method: Optional() stops the chain on an empty field before
        # inline validators run.
        valid = super().validate(extra_validators)
        if bool(self.otp_code.data) == bool(self.legacy_key.data):
            self.otp_code.errors = [*self.otp_code.errors, str(_l("请填写动态码或密钥 (二选一)"))]
            return False
        return valid


# --- 操作员管理 and 用户审核 (org admin console) ----------------------------------------------------

OPERATOR_STATUS_CHOICES = [SelectChoice("active", _l("启用")), SelectChoice("disabled", _l("停用"))]
name_validators = [
    DataRequired(message=_l("请输入姓名")),
    Length(max=100, message=_l("姓名不能超过 100 字")),
]


class OperatorAddForm(FlaskForm):
    """【增加】 (manual §1.3 ②): the name as on the ID card and the phone registered to it."""

    name = StringField(_l("姓名(身份证姓名)"), filters=[_strip], validators=name_validators)
    phone = StringField(
        _l("手机号码(身份证绑定的手机号码)"), filters=[_strip], validators=phone_validators
    )


class OperatorEditForm(FlaskForm):
    """【修改】: only the phone and the status; the page shows everything else read-only."""

    phone = StringField(
        _l("手机号码(身份证绑定的手机号码)"), filters=[_strip], validators=phone_validators
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
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请填写驳回原因")),
            Length(max=200, message=_l("驳回原因不能超过 200 字")),
        ],
    )


# --- the public join request -----------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class JoinForm(FlaskForm):
    """Staff apply to become an operator of their organisation (用户审核). Field names of the
    phone and code as on the login form (DESIGN.md §7)."""

    uscc = StringField(
        _l("统一社会信用代码"),
        filters=[_upper],
        validators=[
            DataRequired(message=_l("请输入统一社会信用代码")),
            Regexp(r"^[0-9A-Z]{18}\Z", message=_l("统一社会信用代码为 18 位数字或大写字母")),
        ],
    )
    name = StringField(_l("姓名(身份证姓名)"), filters=[_strip], validators=name_validators)
    phone = StringField(
        _l("手机号码(身份证绑定的手机号码)"), filters=[_strip], validators=phone_validators
    )
    sms_code = StringField(
        _l("短信验证码"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("请输入验证码")),
            Regexp(r"^[0-9]{6}\Z", message=_l("验证码为 6 位数字")),
        ],
    )
