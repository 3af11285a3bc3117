"""Forms of the platform administration console."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from idp.forms import strip
from idp.identity.models import ORG_TYPE_LABELS, ORG_TYPES
from idp.oidc.claims import SCOPES_SUPPORTED
from idp.oidc.clients import GRANT_TYPES
from idp.oidc.grants import AUTH_METHODS


class MultiCheckboxField(SelectMultipleField):
    """A list of checkboxes (one per choice)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


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


def _lines(value: Any) -> Any:
    """A filter: one URI a line, blank lines dropped."""
    if not isinstance(value, str):
        return value
    return "\n".join(line.strip() for line in value.splitlines() if line.strip())


class ClientForm(FlaskForm):
    """A relying party's metadata as the console edits it; ``metadata()`` is what the shared
    service (``idp.oidc.clients``, also behind ``idp clients add --json``) validates."""

    client_id = StringField(
        _l("客户端标识 (client_id, 留空则自动生成)"),
        filters=[strip],
        validators=[Optional(), Length(max=64)],
    )
    client_name = StringField(
        _l("显示名称"),
        filters=[strip],
        validators=[DataRequired(message=_l("请输入显示名称")), Length(max=100)],
    )
    redirect_uris = TextAreaField(
        _l("回调地址 (redirect_uris, 每行一个)"), filters=[_lines], validators=[Length(max=8000)]
    )
    post_logout_redirect_uris = TextAreaField(
        _l("退出后跳转地址 (post_logout_redirect_uris, 每行一个)"),
        filters=[_lines],
        validators=[Length(max=8000)],
    )
    frontchannel_logout_uri = StringField(
        _l("前端退出通知地址（frontchannel_logout_uri，可留空）"),
        filters=[strip],
        validators=[Optional(), Length(max=2000)],
    )
    frontchannel_logout_session_required = BooleanField(
        _l("退出通知带 iss 和 sid（frontchannel_logout_session_required）")
    )
    org_types = MultiCheckboxField(
        _l("允许的单位类型"),
        choices=[SelectChoice(t.value, label) for t, label in ORG_TYPE_LABELS.items()],
    )
    scopes = MultiCheckboxField(
        _l("允许的 scope"), choices=[SelectChoice(s, s) for s in SCOPES_SUPPORTED]
    )
    grant_types = MultiCheckboxField(
        _l("授权类型 (grant_types)"), choices=[SelectChoice(g, g) for g in sorted(GRANT_TYPES)]
    )
    token_endpoint_auth_method = SelectField(
        _l("令牌端点认证方式"), choices=[SelectChoice(m, m) for m in AUTH_METHODS]
    )
    require_consent = BooleanField(_l("需要用户同意 (非平台自有应用)"))
    refresh_token_reuse_interval = IntegerField(
        _l("刷新令牌重用宽限期 (秒, 0-60)"),
        default=0,
        validators=[NumberRange(min=0, max=60, message=_l("须为 0 到 60 之间的整数"))],
    )

    def metadata(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "client_name": self.client_name.data,
            "redirect_uris": (self.redirect_uris.data or "").splitlines(),
            "post_logout_redirect_uris": (self.post_logout_redirect_uris.data or "").splitlines(),
            "frontchannel_logout_uri": self.frontchannel_logout_uri.data or None,
            "frontchannel_logout_session_required": bool(
                self.frontchannel_logout_session_required.data
            ),
            "org_types": list(self.org_types.data or []),
            "scope": " ".join(self.scopes.data or []),
            "grant_types": list(self.grant_types.data or []),
            "token_endpoint_auth_method": self.token_endpoint_auth_method.data,
            "require_consent": bool(self.require_consent.data),
            "refresh_token_reuse_interval": self.refresh_token_reuse_interval.data or 0,
        }
        if self.client_id.data:
            values["client_id"] = self.client_id.data
        return values

    def fill_from(self, metadata: dict[str, Any]) -> None:
        self.client_name.data = metadata.get("client_name", "")
        self.redirect_uris.data = "\n".join(metadata.get("redirect_uris", []))
        self.post_logout_redirect_uris.data = "\n".join(
            metadata.get("post_logout_redirect_uris", [])
        )
        self.frontchannel_logout_uri.data = metadata.get("frontchannel_logout_uri", "")
        self.frontchannel_logout_session_required.data = bool(
            metadata.get("frontchannel_logout_session_required", False)
        )
        self.org_types.data = list(metadata.get("org_types", ORG_TYPES))
        self.scopes.data = str(metadata.get("scope", "")).split()
        self.grant_types.data = list(metadata.get("grant_types", []))
        self.token_endpoint_auth_method.data = metadata.get("token_endpoint_auth_method")
        self.require_consent.data = bool(metadata.get("require_consent", False))
        self.refresh_token_reuse_interval.data = metadata.get("refresh_token_reuse_interval", 0)


class SearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = StringField(_l("名称或标识"), filters=[strip], validators=[Length(max=100)])


def _iso_date(_form: FlaskForm, field: Any) -> None:
    try:
        date.fromisoformat(field.data)
    except (TypeError, ValueError):
        raise ValidationError(_l("日期格式应为 YYYY-MM-DD")) from None


class AuditFilterForm(FlaskForm):
    """The audit view's filters, read from the query string."""

    class Meta:
        csrf = False

    action = SelectField(_l("操作"), choices=[], default="")
    actor = StringField(_l("操作人"), filters=[strip], validators=[Length(max=100)])
    target = StringField(_l("对象"), filters=[strip], validators=[Length(max=100)])
    result = SelectField(
        _l("结果"),
        choices=[
            SelectChoice("", _l("全部")),
            SelectChoice("success", _l("成功")),
            SelectChoice("failed", _l("失败")),
        ],
        default="",
    )
    since = StringField(_l("开始日期"), filters=[strip], validators=[Optional(), _iso_date])
    until = StringField(_l("结束日期"), filters=[strip], validators=[Optional(), _iso_date])

    def dates(self) -> tuple[date | None, date | None]:
        """The dates given (valid once ``validate`` passed)."""
        since, until = self.since.data, self.until.data
        return (
            date.fromisoformat(since) if since else None,
            date.fromisoformat(until) if until else None,
        )
