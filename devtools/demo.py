"""``idp-dev setup`` and ``idp-dev run``: the development environment behind ``make run``.

setup is idempotent: it migrates the embedded database, generates signing keys, registers
the demo relying party, seeds one demo organisation with one operator, makes the demo UKey
(a development CA, the organisation's certificate on a token) and imports one legacy account.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask.cli import with_appcontext

from devtools.pki import DEMO_PIN, DemoToken, ensure_demo_pki, ensure_demo_token
from idp import db
from idp.config import ROOT, settings

RP_PORT = 5001
RP_CLIENT_ID = "maintenance-fund"
DEMO_ORG = {"uscc": "91310000MA1K000019", "name": "上海示例审计事务所有限公司", "org_type": "audit"}
DEMO_OPERATOR = {"name": "张三", "phone": "13800138000", "password": "Demo-2026-init"}
DEMO_ADMIN = {"username": "platform.admin", "password": "Demo-Console-2026"}
DEMO_LEGACY_ACCOUNT = "WX-DEMO-0001"  # a 工程造价咨询单位 account of the old maintenance-fund login
AGENT_PORT = 17443
DEMO_SCOPE = "openid profile phone org.operators org.reviews"
# People the development real-name check knows (name as on the ID card, phone).
DEMO_PEOPLE = [("李四", "13900139000"), ("王五", "13700137000"), ("张三", "13800138000")]


def rp_base_url() -> str:
    host = settings().issuer.split("://", 1)[1].rsplit(":", 1)[0]
    return f"http://{host}:{RP_PORT}"


def client_file() -> Path:
    return Path(settings().instance_dir) / "maintenance-fund-client.json"


def ensure_keys() -> None:
    from idp.signing import NoSigningKeyError, key_store

    for alg in ("ES256", "RS256"):
        try:
            key_store().signing_key(alg)
        except NoSigningKeyError:
            key_store().generate(alg)


def ensure_demo_client() -> None:
    """Register the demo relying party and keep its secret in instance/ (0600) for the RP."""
    from idp.oidc.clients import get_client, register_client, rotate_secret, update_client
    from idp.oidc.models import Client

    base = rp_base_url()
    existing = db.session().query(Client).filter_by(client_id=RP_CLIENT_ID).one_or_none()
    if existing is None:
        _client, secret = register_client(
            db.session(),
            {
                "client_id": RP_CLIENT_ID,
                "client_name": "上海市房屋维修资金管理系统",
                "redirect_uris": [f"{base}/callback"],
                "post_logout_redirect_uris": [f"{base}/logged-out"],
                "initiate_login_uri": f"{base}/login",
                "client_uri": f"{base}/",
                "grant_types": ["authorization_code", "refresh_token"],
                "org_types": ["audit", "cost_consulting", "bookkeeping"],
                "scope": DEMO_SCOPE,
                "require_pkce": True,
                "backchannel_logout_uri": f"{base}/backchannel-logout",
                "backchannel_logout_session_required": True,
                "frontchannel_logout_uri": f"{base}/frontchannel-logout",
                "frontchannel_logout_session_required": True,
            },
        )
    elif (
        set(DEMO_SCOPE.split()) - set(existing.scope.split())
        or not existing.backchannel_logout_uri
        or not existing.frontchannel_logout_uri
    ):
        # an instance from before
        update_client(
            db.session(),
            RP_CLIENT_ID,
            {
                "scope": DEMO_SCOPE,
                "backchannel_logout_uri": f"{base}/backchannel-logout",
                "backchannel_logout_session_required": True,
                "frontchannel_logout_uri": f"{base}/frontchannel-logout",
                "frontchannel_logout_session_required": True,
            },
        )
        return
    elif not client_file().exists():
        _client, secret = rotate_secret(db.session(), RP_CLIENT_ID)
    else:
        get_client(db.session(), RP_CLIENT_ID)
        return
    path = client_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"client_id": RP_CLIENT_ID, "client_secret": secret}))
    path.chmod(0o600)


def ensure_demo_operator() -> None:
    from idp.identity.lookup import find_account_by_phone, find_org
    from idp.orgs.operators import add_operator_for_platform
    from idp.orgs.registration import add_org

    org = find_org(db.session(), DEMO_ORG["uscc"]) or add_org(db.session(), **DEMO_ORG)
    if find_account_by_phone(db.session(), DEMO_OPERATOR["phone"]) is None:
        add_operator_for_platform(
            db.session(),
            org,
            name=DEMO_OPERATOR["name"],
            phone=DEMO_OPERATOR["phone"],
            password=DEMO_OPERATOR["password"],
            actor="idp-dev setup",
        )


def ensure_demo_platform_admin() -> None:
    """A platform admin for /admin/: the first login binds an authenticator (journey as in
    production; the enrolment page shows the key as text too)."""
    from idp.admin.accounts import add_admin, find_admin

    if find_admin(db.session(), DEMO_ADMIN["username"]) is None:
        add_admin(db.session(), **DEMO_ADMIN, actor="idp-dev setup")


def ensure_demo_ukey() -> DemoToken:
    instance = Path(settings().instance_dir)
    pki = ensure_demo_pki(
        instance, Path(settings().trust_dir), uscc=DEMO_ORG["uscc"], org_name=DEMO_ORG["name"]
    )
    return ensure_demo_token(instance, pki)


def ensure_demo_people() -> None:
    """Pairs for the sandbox real-name check, so the console can add operators in the demo."""
    path = Path(settings().realname_sandbox_file)
    known = path.read_text(encoding="utf-8") if path.exists() else ""
    missing = [f"{name},{phone}" for name, phone in DEMO_PEOPLE if f"{name},{phone}" not in known]
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in missing))


def legacy_secret_file() -> Path:
    return Path(settings().instance_dir) / "demo-legacy-totp.txt"


def ensure_demo_legacy_account() -> None:
    """One legacy account to bind (journey 1, 是): its TOTP seed is kept in instance/."""
    import pyotp

    from idp.identity.models import OrgType
    from idp.orgs.legacy import LegacyEntry, find_legacy_account, store_entry

    if (
        find_legacy_account(db.session(), client_id=RP_CLIENT_ID, ref=DEMO_LEGACY_ACCOUNT)
        is not None
    ):
        return
    secret = pyotp.random_base32()
    store_entry(
        db.session(),
        LegacyEntry(
            client_id=RP_CLIENT_ID,
            uscc=DEMO_ORG["uscc"],
            org_type=OrgType.COST_CONSULTING,
            account_ref=DEMO_LEGACY_ACCOUNT,
            secret_kind="totp",  # noqa: S106  (a kind, not a password)
            secret=secret,
        ),
    )
    legacy_secret_file().write_text(secret)
    legacy_secret_file().chmod(0o600)


# The footer a government platform carries, filled with obviously made-up demo values.
DEMO_BRAND = {
    "IDP_FOOTER_SPONSOR": "上海市物业管理监管与服务平台（演示）",
    "IDP_FOOTER_SUPPORT": "统一认证登录平台开发组",
    "IDP_FOOTER_HOTLINE": "021-0000 0000（演示）",
    "IDP_FOOTER_ICP": "沪ICP备00000000号（演示）",
}


@click.command("setup")
@with_appcontext
def setup() -> None:
    """Prepare the embedded development environment (idempotent)."""
    from idp.migrate import upgrade

    if not settings().dev_mode:
        raise click.ClickException("setup runs only in development mode (IDP_DEV_MODE=1)")
    upgrade(settings().database_url)
    ensure_keys()
    ensure_demo_client()
    ensure_demo_operator()
    ensure_demo_platform_admin()
    ensure_demo_legacy_account()
    ensure_demo_people()
    db.session().commit()
    token = ensure_demo_ukey()
    click.echo(f"development environment ready (demo UKey: {token.kind} token)")


@click.command("run")
@with_appcontext
def run() -> None:
    """Start the provider, its SMS worker, the UKey agent and the demo relying party; Ctrl-C,
    SIGTERM or the end of ``make`` stops them all."""
    issuer = settings().issuer
    port = issuer.rsplit(":", 1)[1] if issuer.count(":") == 2 else "5000"
    # FLASK_RUN_FROM_CLI (set by the idp-dev command) would make the RP's app.run() a no-op.
    env = {
        **DEMO_BRAND,
        # The 客户端工具 page offers what `make agent-dist` built (and says so when nothing is).
        "IDP_AGENT_DIST_DIR": str(ROOT / "dist" / "agent"),
        **{k: v for k, v in os.environ.items() if k != "FLASK_RUN_FROM_CLI"},
        "RP_ISSUER": issuer,
        "RP_BASE_URL": rp_base_url(),
        "RP_CLIENT_FILE": str(client_file()),
        "RP_STATE_FILE": str(Path(settings().instance_dir) / "maintenance-fund-sessions.sqlite3"),
    }
    python = sys.executable
    token = ensure_demo_ukey()
    agent = [
        python,
        "-m",
        "clients.ukey_agent",
        "--allow-origin",
        issuer,
        "--port",
        str(AGENT_PORT),
        *token.agent_args,
    ]
    children = [
        subprocess.Popen(agent, env={**env, **token.agent_env}, cwd=ROOT),
        subprocess.Popen(
            [python, "-m", "idp.cli", "serve", "--host", "127.0.0.1", "--port", port],
            env=env,
            cwd=ROOT,
        ),
        # Delivers the SMS the provider queues (codes, notices) into the outbox.
        subprocess.Popen([python, "-m", "idp.cli", "worker", "--workers", "1"], env=env, cwd=ROOT),
        subprocess.Popen(
            [
                python,
                "-m",
                "clients.maintenance_fund",
                "--host",
                "127.0.0.1",
                "--port",
                str(RP_PORT),
            ],
            env=env,
            cwd=ROOT,
        ),
    ]
    time.sleep(1.5)
    _print_banner(issuer, token)
    supervise(children)


def supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Until one of ``children`` ends, Ctrl-C, SIGTERM or the end of the process that started
    this one (``make``, killed, leaves its command running): then stop them all. Without the
    last two, the services went on holding their ports after ``make`` was gone."""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as Ctrl-C
    try:
        while all(child.poll() is None for child in children) and os.getppid() == parent:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(timeout=10)


def _print_banner(issuer: str, token: DemoToken) -> None:
    import pyotp

    outbox = "/dev/sms" if settings().sms_backend == "outbox" else "(real SMS gateway)"
    secret = legacy_secret_file().read_text().strip() if legacy_secret_file().exists() else ""
    click.echo(
        "\n"
        f"  统一认证登录平台 (provider)     {issuer}/login\n"
        f"  上海市房屋维修资金管理系统（RP）{rp_base_url()}/\n"
        f"  UKey agent                      http://127.0.0.1:{AGENT_PORT}/status ({token.kind} token)\n"
        f"  SMS outbox (dev)                {issuer}{outbox}\n"
        f"  Discovery                       {issuer}/.well-known/openid-configuration\n\n"
        f"  Demo operator: phone {DEMO_OPERATOR['phone']}, initial password {DEMO_OPERATOR['password']}\n"
        "  (the SMS code appears on the outbox page; the first login asks for a new password)\n\n"
        f"  Demo UKey: {DEMO_ORG['name']} ({DEMO_ORG['uscc']}), PIN {DEMO_PIN}\n"
        f"  Try: {issuer}/login?method=cert → 审计单位注册 → 否 → 注册, or\n"
        f"       工程造价咨询单位注册 → 是 → legacy account {DEMO_LEGACY_ACCOUNT}, OTP code from\n"
        f"       `python -c 'import pyotp; print(pyotp.TOTP(\"{secret}\").now())'`\n"
        + f"  Org admin console: {issuer}/org/operators (real-name sandbox knows "
        + ", ".join(f"{name} {phone}" for name, phone in DEMO_PEOPLE[:2])
        + ")\n"
        + f"  (current OTP code: {pyotp.TOTP(secret).now() if secret else '-'})\n\n"
        + f"  Platform console: {issuer}/admin/ as {DEMO_ADMIN['username']}, password "
        + f"{DEMO_ADMIN['password']}\n"
        + "  (the first login binds an authenticator app: scan the QR code, or compute a code from\n"
        + "   the key shown as text: python -c 'import pyotp; print(pyotp.TOTP(\"KEY\").now())')\n"
        + f"  My account (operators and org admins): {issuer}/account\n"
    )
