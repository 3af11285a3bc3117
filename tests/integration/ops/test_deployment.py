"""The deployment files as far as they can be checked without building an image: compose.yaml
starts what it should in the right order with healthchecks, the Dockerfile keeps its promises
(hash-checked installs from the lock, a non-root user, compilers only in the build stage), the
runtime lock pins exactly what requirements.lock pins, idp-serve builds the server it promises,
and the entry
point checks the configuration and migrates a fresh database before running its command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from granian.constants import Interfaces
from sqlalchemy import create_engine, inspect

from idp import serve
from idp.config import ROOT, Settings

ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", re.MULTILINE)


def test_compose_starts_the_provider_its_stores_and_the_relying_party() -> None:
    services = COMPOSE["services"]

    assert set(services) == {"postgres", "redis", "idp", "worker", "rp"}
    for name in ("postgres", "redis", "idp", "rp"):
        assert services[name]["healthcheck"]["test"], name
    assert services["idp"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["rp"]["depends_on"]["idp"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["idp", "worker"]
    assert "/healthz" in " ".join(services["idp"]["healthcheck"]["test"])


def test_compose_settings_are_settings_the_provider_knows() -> None:
    """An IDP_* name the provider does not read would be silently ignored."""
    known = {f"IDP_{field.upper()}" for field in Settings.__dataclass_fields__}
    for name in ("idp", "worker"):
        environment = COMPOSE["services"][name]["environment"]
        idp_names = {key for key in environment if key.startswith("IDP_")}
        assert idp_names <= known, idp_names - known
    assert COMPOSE["services"]["idp"]["environment"]["IDP_STORE_BACKEND"] == "redis"


def test_the_dockerfile_keeps_build_tools_out_of_the_final_image() -> None:
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]

    assert len(stages) == 2
    build, final = stages
    assert build.startswith("python:3.11-slim") and final.startswith("python:3.11-slim")
    assert "--require-hashes" in build and "requirements-runtime.lock" in build
    assert "build-essential" in build and "build-essential" not in final
    assert "apt-get install" not in final
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)  # the idp user
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert 'ENTRYPOINT ["/app/deploy/entrypoint.sh"]' in final
    assert re.search(r'^CMD \["idp-serve"\]$', final, re.MULTILINE)


def test_the_runtime_lock_pins_what_requirements_lock_pins() -> None:
    full = dict(PIN.findall((ROOT / "requirements.lock").read_text()))
    runtime = dict(PIN.findall((ROOT / "requirements-runtime.lock").read_text()))

    assert {name: full.get(name) for name in runtime} == runtime
    assert {"granian", "prometheus-client", "flask"} <= set(runtime)
    assert "gunicorn" not in runtime  # the benchmark's comparison only
    assert not {"pytest", "mypy", "playwright"} & set(runtime)


def test_hadolint_finds_nothing_when_it_is_installed() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_idp_serve_runs_the_provider_in_respawned_threaded_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    server = serve.server(serve.parse_args([]))

    assert (server.target, server.factory) == ("idp.serve:worker_app", True)
    assert server.interface == Interfaces.WSGI
    assert (server.bind_addr, server.bind_port) == ("0.0.0.0", 8000)  # noqa: S104 (the container)
    assert (server.workers, server.blocking_threads) == (3, 4)
    assert server.respawn_failed_workers
    assert server.workers_kill_timeout == serve.SHUTDOWN_SECONDS
    assert not server.log_access  # the provider writes its own access line


def test_idp_serve_takes_its_own_shape() -> None:
    args = serve.parse_args(["--bind", "127.0.0.1:9000", "--workers", "1", "--threads", "2"])
    server = serve.server(args)

    assert (server.bind_addr, server.bind_port) == ("127.0.0.1", 9000)
    assert (server.workers, server.blocking_threads) == (1, 2)


def test_idp_serve_gives_its_workers_the_shutdown_time_it_is_told() -> None:
    server = serve.server(serve.parse_args(["--shutdown-timeout", "90"]))

    assert server.workers_kill_timeout == 90
    with pytest.raises(SystemExit):
        serve.parse_args(["--shutdown-timeout", "0"])


def test_the_workers_load_an_app_object_or_call_a_factory() -> None:
    assert serve.load_app("idp.serve:APP") == "idp:create_app()"  # an object, as it is
    assert serve.load_app("builtins:dict()") == {}  # a factory, called


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bind", "8000"], "--bind: expected host:port"),
        (["--bind", "localhost:http"], "--bind: expected host:port"),
        (["--workers", "0"], "at least 1"),
        (["--threads", "0"], "at least 1"),
    ],
)
def test_idp_serve_refuses_a_bad_option_with_its_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        serve.parse_args(argv)

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_idp_serve_empties_the_metrics_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_1.db").write_bytes(b"a previous run's values")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics))

    serve.empty_metrics_dir()

    assert metrics.is_dir() and not any(metrics.iterdir())


def entrypoint_environment(tmp_path: Path, keys_dir: Path, **extra: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {
        "PATH": path,
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "IDP_DEV_MODE": "1",
        "IDP_INSTANCE_DIR": str(tmp_path / "instance"),
        "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "IDP_KEYS_DIR": str(keys_dir),
        **extra,
    }


def test_the_entry_point_checks_migrates_then_runs_the_command(
    tmp_path: Path, keys_dir: Path
) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "sh", "-c", "echo command ran"],
        env=entrypoint_environment(tmp_path, keys_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "configuration ok (development mode)",
        "database at head",
        "command ran",
    ]
    tables = inspect(create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")).get_table_names()
    assert "audit_event" in tables and "alembic_version" in tables


def test_the_entry_point_refuses_a_bad_configuration_and_runs_nothing(
    tmp_path: Path, keys_dir: Path
) -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "sh", "-c", "echo command ran"],
        env=entrypoint_environment(tmp_path, keys_dir, IDP_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "IDP_LOG_FORMAT must be json or text, not 'xml'" in result.stdout
    assert "command ran" not in result.stdout
    assert (
        not (tmp_path / "fresh.sqlite3").exists()
        or not inspect(create_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")).get_table_names()
    )
