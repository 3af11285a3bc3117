"""Login forms. Field names are the stable interface of docs/design.md §7."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from idp.identity.phone import PHONE_PATTERN

phone_validators = [
    DataRequired(message=_l("请输入手机号")),
    Regexp(PHONE_PATTERN, message=_l("请输入 11 位手机号")),
]

# A hidden field's label is never shown; naming it keeps WTForms from translating its default
# label, which reads WTForms' catalogue from disk on every request that builds the form.
INTERACTION_LABEL = "Interaction"

sms_code_validators = [
    DataRequired(message=_l("请输入验证码")),
    Regexp(r"^[0-9]{6}\Z", message=_l("验证码为 6 位数字")),
]


class OperatorLoginForm(FlaskForm):
    phone = StringField(_l("手机号"), validators=phone_validators)
    password = PasswordField(
        _l("密码"), validators=[DataRequired(message=_l("请输入密码")), Length(max=128)]
    )
    sms_code = StringField(_l("短信验证码"), validators=sms_code_validators)
    interaction = HiddenField(INTERACTION_LABEL)


class PasswordResetForm(FlaskForm):
    """忘记密码: the phone and its code, the name on record, the new password twice."""

    phone = StringField(_l("手机号"), validators=phone_validators)
    sms_code = StringField(_l("短信验证码"), validators=sms_code_validators)
    name = StringField(
        _l("姓名"), validators=[DataRequired(message=_l("请输入姓名")), Length(max=100)]
    )
    new_password = PasswordField(
        _l("新密码"), validators=[DataRequired(message=_l("请输入新密码")), Length(max=128)]
    )
    confirm_password = PasswordField(
        _l("确认新密码"),
        validators=[
            DataRequired(message=_l("请再次输入新密码")),
            EqualTo("new_password", message=_l("两次输入的密码不一致")),
        ],
    )
    interaction = HiddenField(INTERACTION_LABEL)


class SmsCodeRequestForm(FlaskForm):
    phone = StringField(_l("手机号"), validators=phone_validators)


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("原密码"), validators=[DataRequired(message=_l("请输入原密码")), Length(max=128)]
    )
    new_password = PasswordField(
        _l("新密码"), validators=[DataRequired(message=_l("请输入新密码"))]
    )
    confirm_password = PasswordField(
        _l("确认新密码"),
        validators=[
            DataRequired(message=_l("请再次输入新密码")),
            EqualTo("new_password", message=_l("两次输入的密码不一致")),
        ],
    )
