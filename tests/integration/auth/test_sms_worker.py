"""The SMS queue with a real worker, on SQLite (SqliteHuey beside the SQL store) and on Redis
(RedisHuey): the request for a code answers alike for known and unknown phones while the
vendor has not answered yet; a failing vendor is retried with backoff, then given up, each
step audited, and leaves no live code; ``idp worker`` delivers as a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from huey.consumer import Consumer

from idp.sms import SmsMessage
from idp.store import store
from idp.store.redis import RedisStore
from tests.conftest import Outbox
from tests.integration.auth.helpers import (
    SENT_ANSWER,
    ask_code,
    audit_targets,
    login_token,
    store_keys,
    stored_code,
)

ROOT = Path(__file__).resolve().parents[3]
PHONE = "13800138000"
MASKED = "138****8000"
UNKNOWN = "13700137000"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, backend: str) -> dict[str, object]:
    retries = {"sms_retries": 2}
    if backend == "redis":
        redis_url = request.getfixturevalue("redis_url")
        return retries | {"store_backend": "redis", "redis_url": redis_url}
    return retries


@pytest.fixture
def own_store_prefix(app: Flask, backend: str) -> Iterator[None]:
    """On Redis, store keys of this test's own (db 15 is shared; see test_login_redis_store)."""
    current = store()
    if not isinstance(current, RedisStore):
        yield
        return
    current.prefix = f"idp-test-{uuid.uuid4().hex}:"
    yield
    for key in current.client.scan_iter(match=current.prefix + "*"):
        current.client.delete(key)


class TestWorker(Consumer):
    """huey's consumer, its workers as threads of this process; the signal handlers stay the
    test runner's (they can only be set from the main thread, and belong to pytest)."""

    __test__ = False

    def _set_signal_handlers(self) -> None:
        return None


@contextmanager
def running_worker(app: Flask, *, workers: int = 2) -> Iterator[None]:
    consumer = TestWorker(
        app.extensions["idp.sms_queue"], workers=workers, periodic=False, max_delay=0.1
    )
    consumer.start()
    try:
        yield
    finally:
        consumer.stop(graceful=True)


class GatedGateway:
    """The development outbox behind a gate: ``send`` waits until the test opens it, like a
    vendor that has not answered yet."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.gate = threading.Event()

    def send(self, message: SmsMessage) -> None:
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise AssertionError("the test never opened the gate")
        self.inner.send(message)


def wait_until(condition: Callable[[], Any], what: str) -> None:
    """Wait for the worker (a thread or a process) to reach ``condition``; 20 s at most."""
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker did not get there: {what}")
        time.sleep(0.05)


def delivered(settings: Any) -> list[dict[str, str]]:
    """What the phones have received, read without running the queue ourselves."""
    return Outbox(settings.sms_outbox).messages()


@pytest.mark.usefixtures("own_store_prefix")
def test_known_and_unknown_phones_answer_alike_while_the_vendor_is_blocked(
    app, settings, client, operator
):
    gated = GatedGateway(app.extensions["idp.sms"])
    app.extensions["idp.sms"] = gated
    token = login_token(client)
    with running_worker(app):
        known = ask_code(client, PHONE, token)
        assert gated.entered.wait(timeout=20)  # the worker is inside the vendor call ...
        unknown = ask_code(client, UNKNOWN, token)  # ... and the web request does not wait

        assert known.status_code == unknown.status_code == 200
        assert known.get_data() == unknown.get_data()
        assert known.json == SENT_ANSWER
        assert delivered(settings) == []
        wait_until(lambda: audit_targets("sms.not_sent"), "the unknown phone's job")

        gated.gate.set()
        wait_until(lambda: audit_targets("sms.delivered"), "the known phone's SMS")

    assert [m["phone"] for m in delivered(settings)] == [PHONE]
    assert audit_targets("sms.delivered") == [(MASKED, "success")]
    assert audit_targets("sms.not_sent") == [("137****7000", "no_account")]
    assert stored_code(UNKNOWN) is None
    assert stored_code(PHONE) is not None


@pytest.mark.usefixtures("own_store_prefix")
def test_a_failing_vendor_is_retried_then_given_up_and_leaves_no_live_code(
    app, settings, client, operator
):
    settings.sms_outbox.mkdir()  # the outbox cannot be written: every send fails
    token = login_token(client)
    with running_worker(app):
        assert ask_code(client, PHONE, token).status_code == 200

        wait_until(lambda: audit_targets("sms.delivery_failed"), "giving up")

    assert audit_targets("sms.delivery_retrying") == [(MASKED, "sms_unavailable")] * 2
    assert audit_targets("sms.delivery_failed") == [(MASKED, "sms_unavailable")]
    assert audit_targets("sms.delivered") == []
    assert stored_code(PHONE) is None
    assert store_keys(f"sms:interval:{PHONE}:") == []
    assert ask_code(client, PHONE, token).status_code == 200  # asked again at once


@pytest.mark.parametrize("settings_overrides", [{"sms_retry_delay": 2, "sms_retries": 3}])
def test_retries_back_off_three_times_longer_each_time(app, settings, client, operator):
    """On SQLite only: the schedule is huey's, the same on both stores."""
    settings.sms_outbox.mkdir()
    queue = app.extensions["idp.sms_queue"]
    assert ask_code(client, PHONE).status_code == 200
    waits = []
    task = queue.dequeue()
    for _attempt in range(3):
        before = datetime.now(UTC).replace(tzinfo=None)  # huey keeps naive UTC
        queue.execute(task, timestamp=task.eta)  # the scheduler hands it over when it is due
        (task,) = queue.read_schedule(before + timedelta(days=1))
        waits.append(round((task.eta - before).total_seconds()))
    queue.execute(task, timestamp=task.eta)

    assert waits == [2, 6, 18]
    assert len(audit_targets("sms.delivery_retrying")) == 3
    assert audit_targets("sms.delivery_failed") == [(MASKED, "sms_unavailable")]
    assert queue.pending_count() == queue.scheduled_count() == 0


# --- idp worker, a process of its own -----------------------------------------------------------


def worker_environment(settings: Any) -> dict[str, str]:
    """The test app's settings as the ``IDP_*`` variables ``idp worker`` reads."""
    names = [
        "issuer",
        "instance_dir",
        "database_url",
        "secret_key",
        "data_key",
        "keys_dir",
        "store_backend",
        "redis_url",
        "sms_outbox",
        "sms_queue_name",
        "sms_queue_file",
    ]
    variables = {f"IDP_{name.upper()}": str(getattr(settings, name)) for name in names}
    return os.environ | variables | {"IDP_DEV_MODE": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.usefixtures("own_store_prefix")
def test_idp_worker_delivers_the_queued_code(app, settings, client, operator, tmp_path):
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "worker", "--workers", "1"],
            env=worker_environment(settings),
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        assert ask_code(client, PHONE).json == SENT_ANSWER

        wait_until(lambda: delivered(settings) or worker.poll() is not None, "the SMS")
        assert worker.poll() is None, log.read_text()
    finally:
        worker.send_signal(signal.SIGINT)  # stops after the running delivery
        assert worker.wait(timeout=20) == 0, log.read_text()

    ((message),) = delivered(settings)
    assert (message["phone"], message["purpose"]) == (PHONE, "login")
    assert audit_targets("sms.delivered") == [(MASKED, "success")]


@pytest.mark.parametrize("settings_overrides", [{"sms_retries": 1}])
def test_operators_read_the_queue_and_the_delivery_outcomes(app, settings, client, operator):
    import contextvars
    import json

    from idp.cli import sms_cli
    from tests.conftest import drain_sms_queue

    settings.sms_outbox.mkdir()  # every send fails
    token = login_token(client)
    ask_code(client, PHONE, token)
    ask_code(client, UNKNOWN, token)
    waiting = contextvars.Context().run(app.test_cli_runner().invoke, sms_cli, ["status"])
    drain_sms_queue(app)

    done = contextvars.Context().run(app.test_cli_runner().invoke, sms_cli, ["status"])

    assert json.loads(waiting.output)["queued"] == 2
    status = json.loads(done.output)
    assert (status["queued"], status["waiting_to_retry"]) == (0, 0)
    assert status["outcomes"] == {
        "sms.delivered": {},
        "sms.delivery_retrying": {"sms_unavailable": 1},
        "sms.delivery_failed": {"sms_unavailable": 1},
        "sms.not_sent": {"no_account": 1},
    }


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_code_that_expired_in_the_queue_is_not_sent(app, settings, operator):
    from idp import db
    from idp.auth.sms_delivery import Delivery, enqueue
    from tests.conftest import drain_sms_queue

    enqueue(Delivery(PHONE, "login", {"code": "123456"}, not_after=time.time() - 1))
    db.session().commit()
    drain_sms_queue(app)

    assert delivered(settings) == []
    assert audit_targets("sms.not_sent") == [(MASKED, "expired")]


@pytest.mark.parametrize("settings_overrides", [{}])
def test_a_message_queued_after_commit_is_not_sent_when_rolled_back(app, settings, operator):
    from idp import db
    from idp.auth.sms_delivery import Delivery, enqueue_after_commit
    from tests.conftest import drain_sms_queue

    notice = Delivery(PHONE, "operator_added", {"org_name": "上海示例审计事务所有限公司"})
    enqueue_after_commit(notice)
    db.session().rollback()
    db.session().commit()
    drain_sms_queue(app)
    assert delivered(settings) == []

    enqueue_after_commit(notice)
    db.session().commit()
    drain_sms_queue(app)
    assert [m["purpose"] for m in delivered(settings)] == ["operator_added"]


@pytest.mark.usefixtures("own_store_prefix")
def test_a_queued_code_is_sealed(app, settings, client, operator):
    from tests.conftest import drain_sms_queue

    assert ask_code(client, PHONE).status_code == 200
    (raw,) = app.extensions["idp.sms_queue"].storage.enqueued_items()
    drain_sms_queue(app)

    (message,) = delivered(settings)
    assert message["code"].encode() not in bytes(raw)
    assert PHONE.encode() not in bytes(raw)


class PlantedPayload:
    """What someone who can write into the queue's storage might plant: unpickling it would
    create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Path.touch, (str(self.marker),))


@pytest.mark.usefixtures("own_store_prefix")
@pytest.mark.parametrize("signature", [b"", b":" + b"0" * 40], ids=["unsigned", "forged"])
def test_a_message_not_signed_with_the_secret_key_is_never_unpickled(app, tmp_path, signature):
    import pickle

    marker = tmp_path / "unpickled"
    queue = app.extensions["idp.sms_queue"]
    queue.storage.enqueue(pickle.dumps(PlantedPayload(marker)) + signature, 0)

    with pytest.raises(ValueError, match=r"Separator|Signature"):
        queue.dequeue()

    assert not marker.exists()
