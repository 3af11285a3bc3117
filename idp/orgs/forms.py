"""Forms of the registration wizard (journey 1). Choices (org types, relying parties) are set by
the view from what the organisation may still register."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp

from idp.forms import choice_of, strip

# Mobile (11 digits) or landline with an optional area code and extension: 021-62345678,
# 02112345678, 62345678, 0571-8765432-123. ASCII digits only, \Z so no trailing newline passes.
CONTACT_PHONE_PATTERN = (
    r"^(?:1[3-9][0-9]{9}|(?:0[1-9][0-9]{1,2}-?)?[2-9][0-9]{6,7}(?:-[0-9]{1,6})?)\Z"
)


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
        filters=[strip],
        validators=[
            DataRequired(message=_l("请输入单位名称")),
            Length(max=200, message=_l("单位名称不能超过 200 字")),
        ],
    )
    uscc = StringField(_l("统一社会信用代码"), render_kw={"readonly": True})
    contact_person = StringField(
        _l("联系人"),
        filters=[strip],
        validators=[
            DataRequired(message=_l("请输入联系人")),
            Length(max=100, message=_l("联系人不能超过 100 字")),
        ],
    )
    contact_phone = StringField(
        _l("联系电话"),
        filters=[strip],
        validators=[
            DataRequired(message=_l("请输入联系电话")),
            Regexp(
                CONTACT_PHONE_PATTERN,
                message=_l("请输入正确的手机号或固定电话（如 021-62345678）"),
            ),
        ],
    )
    address = StringField(
        _l("单位地址"),
        filters=[strip],
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
        filters=[strip],
        validators=[
            DataRequired(message=_l("请输入原系统账号")),
            Length(max=100, message=_l("账号或动态码错误")),
        ],
    )
    otp_code = StringField(
        _l("动态码（OTP）"),
        filters=[strip],
        validators=[Optional(), Regexp(r"^[0-9]{6}\Z", message=_l("动态码为 6 位数字"))],
    )
    legacy_key = PasswordField(
        _l("密钥"),
        filters=[strip],
        validators=[Optional(), Length(max=200, message=_l("账号或动态码错误"))],
    )

    def validate(self, extra_validators: Any = None) -> bool:
        # Not a validate_otp_code method: Optional() stops the chain on an empty field before
        # inline validators run.
        valid = super().validate(extra_validators)
        if bool(self.otp_code.data) == bool(self.legacy_key.data):
            self.otp_code.errors = [*self.otp_code.errors, str(_l("请填写动态码或密钥（二选一）"))]
            return False
        return valid
