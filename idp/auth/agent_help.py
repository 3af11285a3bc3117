"""Troubleshooting on the 客户端工具 page: every message the UKey login can show, with what to do.

The login page shows three kinds of messages: its own while it looks for the agent, the agent's
error messages (clients/ukey_agent/errors.py, shown as the agent sends them), and the provider's
certificate login errors (idp.auth.cert.errors, quoted from their classes so they never drift).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from idp.auth.cert import errors as cert


@dataclass(frozen=True)
class Trouble:
    message: LazyString
    remedy: LazyString


CHECK_DRIVER = _l(
    "确认已安装 UKey 厂商的驱动（一证通/协卡助手随附），然后拔出 UKey 重新插入并刷新登录页。"
)
CALL_ISSUER = _l("请联系证书颁发机构（如上海市数字证书认证中心）办理证书更新或补办。")

TROUBLES: tuple[Trouble, ...] = (
    # The login page's own messages while it looks for the agent and the UKey.
    Trouble(
        _l("未检测到 UKey 客户端工具。"),
        _l("客户端工具没有运行：按上面的步骤下载并运行它；已安装的，重新登录电脑或再次双击运行。"),
    ),
    Trouble(_l("未检测到 UKey，请插入企业 UKey 后刷新本页"), CHECK_DRIVER),
    Trouble(
        _l("检测到多个 UKey，请只插入一个"),
        _l("只保留本单位的企业 UKey，拔出其他 UKey 后刷新本页。"),
    ),
    Trouble(_l("请输入 UKey 口令"), _l("输入 UKey 的口令（PIN）后再点击「UKey 登录」。")),
    # The agent's messages.
    Trouble(
        _l("该网站未被允许使用本机的 UKey 助手。"),
        _l("本机的客户端工具是从其他网站下载的：请从本页重新下载并运行。"),
    ),
    Trouble(_l("PIN 码错误。"), _l("请核对 UKey 口令后重试；多次输错会锁定 UKey。")),
    Trouble(_l("UKey 的 PIN 码已锁定，请联系证书颁发机构解锁。"), CALL_ISSUER),
    Trouble(_l("未检测到 UKey，请插入 UKey 后重试。"), CHECK_DRIVER),
    Trouble(
        _l("UKey 中没有可用于签名的证书。"),
        _l("插入的可能不是法人一证通 UKey，或证书尚未下载到 UKey 中；请联系证书颁发机构。"),
    ),
    Trouble(_l("UKey 操作失败，请重新插入 UKey 后重试。"), CHECK_DRIVER),
    # The provider's certificate checks.
    Trouble(cert.StaleTimestampError.message, _l("将电脑时间设为自动同步（北京时间）后重试。")),
    Trouble(
        cert.OriginMismatchError.message,
        _l("请直接打开本平台的登录页面，不要通过其他网站跳转登录。"),
    ),
    Trouble(cert.ChallengeError.message, _l("登录页面停留时间过长：刷新页面后重新输入口令。")),
    Trouble(cert.CertificateExpiredError.message, CALL_ISSUER),
    Trouble(
        cert.CertificateNotYetValidError.message,
        _l("新证书尚未到生效时间，请稍后再试或检查电脑时间。"),
    ),
    Trouble(cert.CertificateRevokedError.message, CALL_ISSUER),
    Trouble(cert.RevocationUnknownError.message, _l("暂时无法连接证书状态服务，请几分钟后重试。")),
    Trouble(
        cert.UntrustedIssuerError.message,
        _l("本平台只接受法人一证通等指定机构颁发的机构证书，请使用本单位的企业 UKey。"),
    ),
    Trouble(
        cert.NotOrganisationCertificateError.message,
        _l("个人证书和员工证书不能登录，请使用本单位的企业 UKey。"),
    ),
    Trouble(
        cert.NoUsccError.message,
        _l("请使用载有统一社会信用代码的法人一证通证书；如有疑问请联系证书颁发机构。"),
    ),
    Trouble(
        cert.KeyUsageError.message, _l("请使用 UKey 中的签名证书；如仍不行，请联系证书颁发机构。")
    ),
    Trouble(cert.IssuerRulesUnusableError.message, _l("平台的证书设置有误，请联系平台管理员。")),
    Trouble(cert.MalformedResponseError.message, _l("请更新客户端工具：从本页重新下载并运行。")),
    Trouble(cert.CertificateMismatchError.message, _l("请只插入一个 UKey，刷新页面后重试。")),
    Trouble(
        cert.BadSignatureError.message, _l("请拔出 UKey 重新插入后重试；仍不行请联系证书颁发机构。")
    ),
    Trouble(cert.AlgorithmMismatchError.message, _l("请更新客户端工具：从本页重新下载并运行。")),
    Trouble(
        cert.OrgSuspendedCertificateError.message,
        _l("平台已暂停本机构使用，证书和 UKey 本身没有问题：请联系平台管理员了解原因。"),
    ),
    Trouble(cert.CertificateLoginError.message, _l("刷新页面后重试；仍不行请联系平台管理员。")),
)
