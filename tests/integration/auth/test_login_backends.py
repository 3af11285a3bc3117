"""The core operator login on SQLite and PostgreSQL (each with the SQL store on the same
database); test_login_redis_store.py runs it on the Redis store."""

from __future__ import annotations

from tests.conftest import both_databases
from tests.flows import PASSWORD
from tests.integration.auth.helpers import core_login_journey


@both_databases
def test_operator_login_on_each_database(client, outbox, operator):
    core_login_journey(client, outbox, phone=operator.phone, password=PASSWORD)
