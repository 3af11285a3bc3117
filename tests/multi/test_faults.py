"""Faults while three instances run: Redis dies, PostgreSQL drops or refuses connections, a
server's worker is killed during a token request. Each request that needs what is gone gets a
clear 503 (JSON or a page), nothing is left half-made, and the service comes back by itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import pytest
import requests

from idp.identity.models import Account, Organisation, OrgIdentity
from idp.oidc.models import AuthorizationCode, Token
from tests.conftest import POSTGRES_URL
from tests.flows import PASSWORD, Pkce
from tests.integration.auth.helpers import allow_resend
from tests.integration.orgs.helpers import register_details
from tests.multi.harness import Browser, Cluster, RedisServer, wait_until
from tests.multi.helpers import (
    PHONE,
    audit_rows,
    cert_login,
    count_rows,
    follow,
    form_token,
    log_in,
    redeem,
    refresh,
    seed_operator_and_rp,
    start_authorization,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

UNAVAILABLE = "服务暂不可用，请稍后再试"


def rows() -> dict[str, int]:
    return {
        model.__name__: count_rows(model)
        for model in (Account, Organisation, OrgIdentity, AuthorizationCode, Token)
    }


def tokens_for(browser: Browser, cluster: Cluster, rp, outbox, name: str = "A") -> dict:
    client = browser.at(cluster[name])
    pkce = Pkce.new()
    code = follow(client, log_in(client, outbox, interaction=start_authorization(client, rp, pkce)))
    issued = redeem(client, rp, code["code"], pkce.verifier)
    assert issued.status_code == 200, issued.text
    return dict(issued.json())


# --- Redis --------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_down(server: RedisServer) -> Iterator[None]:
    server.kill()
    try:
        yield
    finally:
        server.start()


def test_a_redis_outage_fails_closed_then_the_service_resumes_without_a_restart(
    cluster, control, redis_server, browser, outbox, multi_pki
):
    _org, rp = seed_operator_and_rp(control)
    tokens = tokens_for(browser, cluster, rp, outbox)
    a, b, c = (browser.at(cluster[name]) for name in "ABC")
    token = form_token(a)
    newcomer = Browser()
    cert_token = form_token(newcomer.at(cluster["C"]), "/login?method=cert")
    registration_rp(control)
    admin = Browser().at(cluster["A"])
    assert cert_login(admin, admin, multi_pki).headers["Location"] == "/portal"
    register_token = form_token(admin, "/register/cost_consulting/new")
    before = rows()
    sent_before = outbox.messages()

    with redis_down(redis_server):
        code_request = a.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token})
        login = b.post(
            "/login",
            data={"phone": PHONE, "password": PASSWORD, "sms_code": "123456", "csrf_token": token},
        )
        portal = c.get("/portal")
        authorize = a.get(f"/authorize?client_id={rp.client_id}&response_type=code")
        challenge = newcomer.at(cluster["C"]).post(
            "/login/cert/challenge", headers={"X-CSRFToken": cert_token}
        )
        ready = b.get("/readyz")
        registration = admin.post(
            "/register/cost_consulting/new",
            data={**register_details(), "platforms": rp.client_id, "csrf_token": register_token},
        )
        refreshed = refresh(c, rp, tokens["refresh_token"])
        after = rows()
        sent = outbox.messages()

    assert (code_request.status_code, code_request.json()) == (
        503,
        {"error": "store_unavailable", "error_description": UNAVAILABLE},
    )
    for page in (login, portal, authorize, registration):
        assert page.status_code == 503
        assert page.headers["Content-Type"].startswith("text/html")
        assert UNAVAILABLE in page.text
    assert challenge.status_code == 503
    assert (ready.status_code, ready.json()["failing"]) == (503, ["store"])
    # Tokens live in the database: a refresh needs no Redis, and its successor reaches the
    # client (the only copy of a live token is never swallowed by a 503).
    assert refreshed.status_code == 200, refreshed.text
    assert after == before | {"Token": before["Token"] + 1}
    assert sent == sent_before

    # Redis is back (empty: no persistence): every instance serves again, no restart.
    assert refresh(a, rp, refreshed.json()["refresh_token"]).status_code == 200
    for name in "ABC":
        assert browser.at(cluster[name]).get("/readyz").status_code == 200
    again = Browser()
    assert log_in(again.at(cluster["B"]), outbox) == "/portal"
    assert again.at(cluster["C"]).get("/portal").status_code == 200
    assert cert_login(newcomer.at(cluster["A"]), newcomer.at(cluster["B"]), multi_pki).ok


# --- PostgreSQL ---------------------------------------------------------------------------------


@contextlib.contextmanager
def admin_connection() -> Iterator[psycopg.Connection]:
    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as connection:
        yield connection


def terminate_backends(connection: psycopg.Connection, database: str) -> int:
    cursor = connection.execute(
        # each waited for (up to 5 s): a backend that is only signalled may still answer the
        # next request's pool check, and the request then meets it as it exits
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (database,),
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def database_name(cluster: Cluster) -> str:
    return cluster.database_url.rsplit("/", 1)[1]


def test_terminated_database_connections_are_replaced_without_an_error(
    cluster, control, browser, outbox
):
    """Every pooled connection of every instance is killed (a failover, a restart of
    PostgreSQL, an idle timeout of a proxy): the next requests reconnect, none fails."""
    _org, rp = seed_operator_and_rp(control)
    tokens = tokens_for(browser, cluster, rp, outbox)
    for name in "ABC":  # every instance holds a pooled connection now
        assert browser.at(cluster[name]).get("/readyz").status_code == 200

    with admin_connection() as admin:
        assert terminate_backends(admin, database_name(cluster)) >= 3

    for name in "ABC":
        assert browser.at(cluster[name]).get("/portal").status_code == 200
    assert refresh(browser.at(cluster["B"]), rp, tokens["refresh_token"]).status_code == 200
    allow_resend(PHONE)
    assert tokens_for(Browser(), cluster, rp, outbox, "C")["id_token"]


@contextlib.contextmanager
def database_refusing_connections(cluster: Cluster) -> Iterator[None]:
    """The database accepts no connection (PostgreSQL down for this database) until the end."""
    name = database_name(cluster)
    with admin_connection() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        terminate_backends(admin, name)
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_database_outage_gets_503_then_the_service_resumes_without_a_restart(
    cluster, control, browser, outbox
):
    _org, rp = seed_operator_and_rp(control)
    tokens = tokens_for(browser, cluster, rp, outbox)
    allow_resend(PHONE)
    newcomer = Browser()
    a, b, c = (newcomer.at(cluster[name]) for name in "ABC")
    token = form_token(a)
    before = rows()

    with database_refusing_connections(cluster):
        code_request = a.post("/login/sms-code", data={"phone": PHONE, "csrf_token": token})
        login = b.post(
            "/login",
            data={"phone": PHONE, "password": PASSWORD, "sms_code": "123456", "csrf_token": token},
        )
        portal = browser.at(cluster["C"]).get("/portal")
        refreshed = refresh(c, rp, tokens["refresh_token"])
        problem = a.get("/api/v1/org/operators", headers={"Authorization": "Bearer x"})
        ready = b.get("/readyz")

    assert code_request.status_code == 503, code_request.text[:2000]
    assert (code_request.status_code, code_request.json()) == (
        503,
        {"error": "database_unavailable", "error_description": UNAVAILABLE},
    )
    for page in (login, portal):
        assert page.status_code == 503, page.text[:300]
        assert page.headers["Content-Type"].startswith("text/html")
        assert UNAVAILABLE in page.text
    assert (refreshed.status_code, refreshed.json()["error"]) == (503, "database_unavailable")
    assert problem.status_code == 503
    assert problem.json()["code"] == "database_unavailable"
    assert (ready.status_code, ready.json()["failing"]) == (503, ["database"])

    assert rows() == before
    for name in "ABC":
        assert browser.at(cluster[name]).get("/portal").status_code == 200
    assert refresh(b, rp, tokens["refresh_token"]).status_code == 200
    assert tokens_for(newcomer, cluster, rp, outbox, "C")["id_token"]


# --- a worker killed during a token request ------------------------------------------------------
# Each test kills the worker of a different instance: a worker that dies again within 5.5 s of
# being replaced is a crash loop, and the server stops (docs/faults.md).


def kill_next_token_request(cluster: Cluster, moment: str) -> None:
    cluster.kill_file.write_text(moment)


def wait_for_a_new_worker(instance, old_workers: list[int]) -> None:
    """Until the replacement answers: with its only worker gone, an instance refuses
    connections until the new one listens (docs/faults.md)."""
    wait_until(
        lambda: instance.worker_pids() not in ([], old_workers) and instance.ready(),
        "a new worker",
    )


def post_token_expecting_a_dropped_connection(client, rp, code: str, verifier: str) -> None:
    with pytest.raises(requests.ConnectionError):
        redeem(client, rp, code, verifier)


def test_a_worker_killed_as_the_token_request_arrives_leaves_the_code_for_the_retry(
    cluster, control, browser, outbox
):
    _org, rp = seed_operator_and_rp(control)
    a = browser.at(cluster["A"])
    pkce = Pkce.new()
    code = follow(a, log_in(a, outbox, interaction=start_authorization(a, rp, pkce)))["code"]
    old_workers = cluster["A"].worker_pids()

    kill_next_token_request(cluster, "before")
    post_token_expecting_a_dropped_connection(a, rp, code, pkce.verifier)
    wait_for_a_new_worker(cluster["A"], old_workers)
    retried = redeem(a, rp, code, pkce.verifier)

    assert retried.status_code == 200, retried.text
    assert count_rows(Token) == 1
    assert [r for _a, _t, r in audit_rows("oidc.code_redeemed")] == ["success"]


@pytest.mark.parametrize(("moment", "victim"), [("claimed", "B"), ("after", "C")])
def test_a_worker_killed_after_claiming_the_code_leaves_a_trace_and_a_clear_retry(
    cluster, control, browser, outbox, moment, victim
):
    """Killed once the code is claimed (committed at once, so it is never redeemed twice) or
    once the tokens are issued but before the answer went out: the code is used up; the audit
    log says which client redeemed it, and the retry is a clear invalid_grant that revokes
    whatever the lost answer carried."""
    _org, rp = seed_operator_and_rp(control)
    v = browser.at(cluster[victim])
    pkce = Pkce.new()
    code = follow(v, log_in(v, outbox, interaction=start_authorization(v, rp, pkce)))["code"]
    old_workers = cluster[victim].worker_pids()

    kill_next_token_request(cluster, moment)
    post_token_expecting_a_dropped_connection(v, rp, code, pkce.verifier)
    wait_for_a_new_worker(cluster[victim], old_workers)
    issued_before_retry = count_rows(Token)
    assert count_rows(AuthorizationCode, AuthorizationCode.consumed_at.is_not(None)) == 1
    retried = redeem(browser.at(cluster["A"]), rp, code, pkce.verifier)

    assert issued_before_retry == (1 if moment == "after" else 0)
    assert (retried.status_code, retried.json()["error"]) == (400, "invalid_grant")
    redeemed = audit_rows("oidc.code_redeemed")
    assert [(actor, result) for actor, _t, result in redeemed] == [
        (f"client:{rp.client_id}", "success")
    ]
    reused = audit_rows("oidc.code_reused")
    assert [(target, result) for _a, target, result in reused] == [
        (redeemed[0][1], "tokens_revoked")
    ]
    assert count_rows(Token, Token.revoked_at.is_(None)) == 0


# --- the same row created twice at the same instant ---------------------------------------------


@contextlib.contextmanager
def inserts_held(cluster: Cluster, table: str, *, waiting: int) -> Iterator[None]:
    """Hold every INSERT into ``table`` (a SHARE lock lets reads through) until ``waiting``
    requests have passed their checks and wait to insert, then let them all go at once: the
    same instant, made certain."""
    url = cluster.database_url.replace("+psycopg", "")
    with psycopg.connect(url) as holder:
        holder.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
        yield
        with psycopg.connect(url, autocommit=True) as observer:  # pg_class is per database

            def blocked() -> bool:
                row = observer.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE c.relname = %s AND NOT l.granted",
                    (table,),
                ).fetchone()
                return bool(row and row[0] >= waiting)

            wait_until(blocked, f"{waiting} requests waiting to insert into {table}")
        holder.commit()


def post_together(cluster: Cluster, table: str, posts: list) -> list:
    """Send ``posts`` (callables) in parallel, their INSERTs into ``table`` released together."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(posts)) as pool:
        with inserts_held(cluster, table, waiting=len(posts)):
            futures = [pool.submit(post) for post in posts]
        return [future.result(timeout=30) for future in futures]


def registration_rp(control) -> None:
    from tests.conftest import register

    register(
        control,
        {
            "client_name": "上海市房屋维修资金管理系统",
            "redirect_uris": ["https://rp.example/callback"],
            "org_types": ["audit", "cost_consulting", "bookkeeping"],
        },
    )


def test_two_first_registrations_of_one_uscc_at_once_one_succeeds_one_is_told(
    cluster, control, multi_pki
):
    registration_rp(control)
    from tests.integration.orgs.helpers import form_error, register_details

    admins, pages = [], []
    for leaf, name in (("good_rsa", "A"), ("good_ec", "B")):
        admin = Browser().at(cluster[name])
        assert cert_login(admin, admin, multi_pki, leaf=leaf).headers["Location"] == "/register"
        page = admin.get("/register/audit/new")
        assert page.status_code == 200
        admins.append(admin)
        pages.append(page.text)
    platforms = [c.client_id for c in control_clients()]

    def submit(admin, page):
        from tests.flows import csrf_token

        data = {**register_details(), "platforms": platforms, "csrf_token": csrf_token(page)}
        return lambda: admin.post("/register/audit/new", data=data)

    answers = post_together(
        cluster, "organisation", [submit(a, p) for a, p in zip(admins, pages, strict=True)]
    )

    assert sorted(a.status_code for a in answers) == [200, 400]
    done = next(a for a in answers if a.status_code == 200)
    refused = next(a for a in answers if a.status_code == 400)
    assert '<h1 id="result">注册成功</h1>' in done.text
    assert form_error(refused.text) == "该机构已存在，请刷新页面后重试"
    assert count_rows(Organisation) == 1
    assert [r for _a, _t, r in audit_rows("orgs.registered")] == ["success"]
    assert [r for _a, _t, r in audit_rows("orgs.registration_refused")] == ["registration_failed"]


def control_clients() -> list:
    from flask import current_app
    from sqlalchemy import select

    from idp.oidc.models import Client

    with current_app.extensions["idp.db"]() as session:
        return list(session.scalars(select(Client)))


def test_two_admins_adding_the_same_new_phone_at_once_one_succeeds_one_is_told(
    cluster, control, multi_pki, outbox
):
    from idp.identity.models import Membership
    from tests.integration.console.helpers import field_errors

    seed_operator_and_rp(control)
    control.extensions["idp.realname"].add(name="李四", phone="13900139000")
    admins, tokens = [], []
    for leaf, name in (("good_rsa", "A"), ("good_ec", "B")):
        admin = Browser().at(cluster[name])
        assert cert_login(admin, admin, multi_pki, leaf=leaf).headers["Location"] == "/portal"
        admins.append(admin)
        tokens.append(form_token(admin, "/org/operators/new"))
    before = len(outbox.messages())

    def submit(admin, token):
        data = {"name": "李四", "phone": "13900139000", "csrf_token": token}
        return lambda: admin.post("/org/operators/new", data=data)

    answers = post_together(
        cluster, "account", [submit(a, t) for a, t in zip(admins, tokens, strict=True)]
    )

    assert sorted(a.status_code for a in answers) == [302, 409], [a.text[:300] for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert field_errors(refused.text) == {"phone": ["该手机号已是本机构的操作员"]}
    assert count_rows(Account, Account.phone == "13900139000") == 1
    assert count_rows(Membership) == 2  # 张三 and 李四
    sent = outbox.messages()[before:]
    assert [(m["phone"], m["purpose"]) for m in sent] == [("13900139000", "initial_password")]
    results = sorted(r for _a, _t, r in audit_rows("orgs.operator_added"))
    assert results == ["operator_exists", "success", "success"]  # 张三 (the set-up) and 李四
