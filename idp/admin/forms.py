"""Forms of the platform administration console."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
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
from idp.oidc.claims import SCOPES_SUPPORTED, SIGNING_ALGS
from idp.oidc.clients import GRANT_TYPES
from idp.oidc.grants import AUTH_METHODS
from idp.oidc.models import LIFETIMES
from idp.oidc.subjects import SUBJECT_TYPES


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


def _jwks(_form: FlaskForm, field: Any) -> None:
    """A JWK Set pasted as JSON (checked in full by the shared service)."""
    if not field.data:
        return
    try:
        value = json.loads(field.data)
    except ValueError as error:
        raise ValidationError(_l("不是有效的 JSON")) from error
    if not isinstance(value, dict):
        raise ValidationError(_l('须为 JWK Set：{"keys": [...]}'))


def _uri(label: Any) -> StringField:
    return StringField(label, filters=[strip], validators=[Optional(), Length(max=2000)])


def _lifetime(label: Any) -> IntegerField:
    return IntegerField(label, validators=[Optional()])


class ClientForm(FlaskForm):
    """A relying party's metadata as the console edits it; ``metadata()`` is what the shared
    service (``idp.oidc.clients``, also behind ``idp clients add --json``) validates. An empty
    optional field removes the value."""

    client_id = StringField(
        _l("客户端标识（client_id，留空则自动生成）"),
        filters=[strip],
        validators=[Optional(), Length(max=64)],
    )
    client_name = StringField(
        _l("显示名称"),
        filters=[strip],
        validators=[DataRequired(message=_l("请输入显示名称")), Length(max=100)],
    )
    logo_uri = _uri(_l("图标地址（logo_uri）"))
    redirect_uris = TextAreaField(
        _l("回调地址（redirect_uris，每行一个）"), filters=[_lines], validators=[Length(max=8000)]
    )
    post_logout_redirect_uris = TextAreaField(
        _l("退出后跳转地址（post_logout_redirect_uris，每行一个）"),
        filters=[_lines],
        validators=[Length(max=8000)],
    )
    initiate_login_uri = _uri(_l("从门户进入的登录地址（initiate_login_uri）"))
    backchannel_logout_uri = _uri(_l("后台退出通知地址（backchannel_logout_uri）"))
    backchannel_logout_session_required = BooleanField(_l("退出通知须带会话标识（sid）"))
    frontchannel_logout_uri = _uri(_l("前端退出通知地址（frontchannel_logout_uri）"))
    frontchannel_logout_session_required = BooleanField(
        _l("前端退出通知带 iss 和 sid（frontchannel_logout_session_required）")
    )
    org_types = MultiCheckboxField(
        _l("允许的单位类型"),
        choices=[SelectChoice(t.value, label) for t, label in ORG_TYPE_LABELS.items()],
    )
    scopes = MultiCheckboxField(
        _l("允许的 scope"), choices=[SelectChoice(s, s) for s in SCOPES_SUPPORTED]
    )
    grant_types = MultiCheckboxField(
        _l("授权类型（grant_types）"), choices=[SelectChoice(g, g) for g in sorted(GRANT_TYPES)]
    )
    token_endpoint_auth_method = SelectField(
        _l("令牌端点认证方式"), choices=[SelectChoice(m, m) for m in AUTH_METHODS]
    )
    jwks_uri = _uri(_l("客户端公钥地址（jwks_uri，private_key_jwt 用）"))
    jwks = TextAreaField(
        _l("客户端公钥（jwks，JSON；与 jwks_uri 二选一）"),
        filters=[strip],
        validators=[Length(max=20000), _jwks],
    )
    id_token_signed_response_alg = SelectField(
        _l("ID 令牌签名算法"), choices=[SelectChoice(a, a) for a in SIGNING_ALGS], default="ES256"
    )
    subject_type = SelectField(
        _l("用户标识类型（subject_type，注册后不可修改）"),
        choices=[SelectChoice(t, t) for t in SUBJECT_TYPES],
        default="public",  # an edit does not send it (shown disabled)
    )
    sector_identifier_uri = _uri(_l("扇区标识地址（sector_identifier_uri，pairwise 用）"))
    require_consent = BooleanField(_l("需要用户同意（非平台自有应用）"))
    refresh_token_reuse_interval = IntegerField(
        _l("刷新令牌重用宽限期（秒，0-60）"),
        default=0,
        validators=[NumberRange(min=0, max=60, message=_l("须为 0 到 60 之间的整数"))],
    )
    access_token_lifetime = _lifetime(_l("访问令牌有效期（秒，留空为平台默认）"))
    id_token_lifetime = _lifetime(_l("ID 令牌有效期（秒，留空为平台默认）"))
    refresh_token_idle_lifetime = _lifetime(_l("刷新令牌闲置有效期（秒，留空为平台默认）"))
    refresh_token_absolute_lifetime = _lifetime(_l("刷新令牌最长有效期（秒，留空为平台默认）"))

    OPTIONAL = (
        "logo_uri",
        "initiate_login_uri",
        "backchannel_logout_uri",
        "jwks_uri",
        "sector_identifier_uri",
        *LIFETIMES,
    )
    # fixed at registration: every sub the client knows depends on them
    FIXED = ("client_id", "subject_type", "sector_identifier_uri")

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
            "id_token_signed_response_alg": self.id_token_signed_response_alg.data,
            "subject_type": self.subject_type.data,
            "require_consent": bool(self.require_consent.data),
            "refresh_token_reuse_interval": self.refresh_token_reuse_interval.data or 0,
            "backchannel_logout_session_required": bool(
                self.backchannel_logout_session_required.data
            ),
            "jwks": json.loads(self.jwks.data) if self.jwks.data else None,
        }
        for name in self.OPTIONAL:
            data = getattr(self, name).data
            values[name] = data if data not in ("", None) else None
        if self.client_id.data:
            values["client_id"] = self.client_id.data
        return values

    def changes(self) -> dict[str, Any]:
        """What an edit may change: everything but the fields fixed at registration."""
        return {k: v for k, v in self.metadata().items() if k not in self.FIXED}

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
        self.id_token_signed_response_alg.data = metadata.get("id_token_signed_response_alg")
        self.subject_type.data = metadata.get("subject_type", "public")
        self.require_consent.data = bool(metadata.get("require_consent", False))
        self.refresh_token_reuse_interval.data = metadata.get("refresh_token_reuse_interval", 0)
        self.backchannel_logout_session_required.data = bool(
            metadata.get("backchannel_logout_session_required", False)
        )
        self.jwks.data = json.dumps(metadata["jwks"], indent=2) if "jwks" in metadata else ""
        for name in self.OPTIONAL:
            getattr(self, name).data = metadata.get(name)


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


class InitialTokenForm(FlaskForm):
    """An initial access token for dynamic client registration (RFC 7591 §3)."""

    label = StringField(
        _l("名称（用途或接入方）"),
        filters=[strip],
        validators=[DataRequired(message=_l("请输入名称")), Length(max=100)],
    )
    days = IntegerField(
        _l("有效期（天，1-365）"),
        default=7,
        validators=[NumberRange(min=1, max=365, message=_l("须为 1 到 365 之间的整数"))],
    )
    max_uses = IntegerField(
        _l("可注册应用数（留空表示不限）"),
        validators=[
            Optional(),
            NumberRange(min=1, max=10000, message=_l("须为 1 到 10000 之间的整数")),
        ],
    )


class OrgSearchForm(FlaskForm):
    """机构管理's search, read from the query string."""

    class Meta:
        csrf = False

    # the length is the service's to check (``idp.orgs.directory``), as for ``idp orgs list``
    q = StringField(_l("统一社会信用代码或名称"), filters=[strip])


class SuspensionForm(FlaskForm):
    """暂停使用 / 恢复使用: the reason (the service decides whether one is required)."""

    reason = TextAreaField(_l("原因"), filters=[strip])


class LegacyUploadForm(FlaskForm):
    """原系统账号导入: the same CSV file as ``idp legacy import``."""

    file = FileField(
        _l("账号文件 (CSV, UTF-8)"), validators=[FileRequired(message=_l("请选择要导入的文件"))]
    )
