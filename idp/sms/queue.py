"""The SMS delivery queue: a durable huey queue that ``idp worker`` consumes, so that no web
request waits for the SMS vendor.

The queue lives where the ephemeral store does, so a deployment needs nothing new: with
``IDP_STORE_BACKEND=redis`` on that Redis (shared by every instance), with the SQL store in a
SQLite file of its own in the instance directory (the embedded default: one host). Messages
are serialised with an HMAC under ``IDP_SECRET_KEY`` (huey's ``SignedSerializer``), so whoever can
write into Redis but lacks the key cannot make the worker unpickle their data; the caller seals
what the message says (codes, passwords) before it is queued.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask
from huey import Huey, RedisHuey, SqliteHuey
from huey.api import Task, TaskWrapper
from huey.serializer import SignedSerializer

from idp import context, db
from idp.config import Settings

# Each retry waits this many times longer than the one before.
RETRY_BACKOFF = 3


def make_queue(settings: Settings) -> Huey:
    """The queue of ``settings``: RedisHuey on the Redis store, SqliteHuey beside the SQL one."""
    serializer = SignedSerializer(secret=settings.secret_key, salt="idp-sms-queue")
    if settings.store_backend == "redis":
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=2
        )  # the timeout exceeds the worker's 1 s blocking read
        return RedisHuey(
            settings.sms_queue_name, connection_pool=pool, results=False, serializer=serializer
        )
    path = Path(settings.sms_queue_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(
        settings.sms_queue_name, filename=str(path), results=False, serializer=serializer
    )


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["idp.sms_queue"] = make_queue(settings)


def queue() -> Huey:
    value: Huey = context.app().extensions["idp.sms_queue"]
    return value


def worker_task(
    app: Flask,
    run: Callable[[str, int], None],
    *,
    name: str,
    retries: int,
    retry_delay: float,
) -> TaskWrapper:
    """Register ``run(message, retries_left)`` as a task of this app's queue (the web process
    enqueues it, ``idp worker`` runs it, both under ``name``). It runs in an app context and
    what it wrote is committed, also when it raises to be retried (its audit events)."""

    def execute(message: str, task: Task) -> None:
        with app.app_context():
            try:
                run(message, task.retries)
            finally:
                db.session().commit()

    wrapper: TaskWrapper = app.extensions["idp.sms_queue"].task(
        retries=retries,
        retry_delay=retry_delay,
        retry_backoff=RETRY_BACKOFF,
        context=True,
        name=name,
    )(execute)
    return wrapper
