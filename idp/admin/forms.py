"""Forms of the platform administration console."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from idp.forms import strip


class AdminLoginForm(FlaskForm):
    username = StringField(
        _l("用户名"), filters=[strip], validators=[DataRequired(message=_l("请输入用户名"))]
    )
    password = PasswordField(
        _l("密码"), validators=[DataRequired(message=_l("请输入密码")), Length(max=128)]
    )


class TotpForm(FlaskForm):
    code = StringField(
        _l("动态验证码"),
        filters=[strip],
        validators=[DataRequired(message=_l("请输入动态验证码")), Length(max=32)],
    )
