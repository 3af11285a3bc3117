"""Smoke test of the built agent bundle (``make agent-dist-check``; also run by test_bundle.py).

It does what an accountant's PC does: the provider stamps its origin into the download, the
bundle is started without any option (in a temporary HOME), finds the PKCS#11 module by itself,
answers ``GET /status`` from a SoftHSM2 token and signs a challenge after the PIN. The signature is
checked with ``cryptography`` here, not with agent code.

    python -m tests.agent.bundle_smoke dist/agent/ukey-agent-linux-x86_64
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from clients.ukey_agent.softhsm_token import make_soft_token
from idp.auth.agent_dist import stamp
from tests.agent.helpers import ORIGIN, PIN, SO_PIN, USCC, challenge, check_signed, make_pki

START_TIMEOUT = 30.0  # seconds; a one-file bundle unpacks itself first (about 1 s here)


@dataclass(frozen=True)
class SmokeResult:
    started_in: float
    """Seconds from starting the bundle to the first ``/status`` answer."""
    status: dict[str, object]
    autostart_entry: Path
    log: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_status(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the bundle exited with {process.returncode}: {log.read_text()}")
        try:
            answer = requests.get(f"{url}/status", headers={"Origin": ORIGIN}, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.05)  # polling while the bundle unpacks and starts
            continue
        assert answer.status_code == 200, answer.text
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        return dict(answer.json())
    raise AssertionError(f"no /status answer within {START_TIMEOUT} s: {log.read_text()}")


def smoke(bundle: Path, workdir: Path) -> SmokeResult:
    """Stamp, start, check ``/status``, sign; raises AssertionError on any difference."""
    pki = make_pki()
    conf = make_soft_token(
        workdir / "softhsm",
        label="ukey-1",
        pin=PIN,
        so_pin=SO_PIN,
        key=pki.rsa.key,
        cert_der=pki.rsa.der,
        extra_certs=pki.chain,
    )
    port = _free_port()
    downloaded = workdir / "Downloads" / bundle.name
    downloaded.parent.mkdir(parents=True)
    shutil.copyfile(bundle, downloaded)
    with downloaded.open("ab") as file:  # what /ukey/agent/download/<name> sends
        file.write(stamp(ORIGIN, f"http://127.0.0.1:{port}"))
    downloaded.chmod(0o755)
    home = workdir / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "SOFTHSM2_CONF": str(conf),
    }
    log = workdir / "bundle.log"
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(downloaded)], env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=home
        )
    try:
        url = f"http://127.0.0.1:{port}"
        status = _wait_for_status(url, process, log)
        started_in = time.monotonic() - started
        certificate = status["certificate"]
        assert isinstance(certificate, dict), status
        assert certificate["uscc"] == USCC, status
        nonce = challenge()
        signed = requests.post(
            f"{url}/sign",
            json={"challenge": nonce, "pin": PIN},
            headers={"Origin": ORIGIN},
            timeout=10,
        )
        assert signed.status_code == 200, signed.text
        check_signed(signed.json(), issued=pki.rsa, alg="RS256", nonce=nonce)
        phish = {"Origin": "https://phish.example.com"}
        foreign = requests.get(f"{url}/status", headers=phish, timeout=10)
        assert foreign.status_code == 403, foreign.text
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    entry = home / ".config" / "autostart" / "ukey-agent.desktop"
    assert entry.is_file(), f"no autostart entry: {log.read_text()}"
    installed = home / ".local" / "share" / "ukey-agent" / bundle.name
    assert f"Exec={installed}\n" in entry.read_text(), entry.read_text()
    assert installed.read_bytes() == downloaded.read_bytes()
    return SmokeResult(
        started_in=started_in, status=status, autostart_entry=entry, log=log.read_text()
    )


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tests.agent.bundle_smoke BUNDLE")
    bundle = Path(sys.argv[1])
    if not bundle.is_file():
        raise SystemExit(f"{bundle} not found: build it with make agent-dist")
    with tempfile.TemporaryDirectory(prefix="ukey-bundle-") as workdir:
        result = smoke(bundle, Path(workdir))
    certificate = result.status["certificate"]
    assert isinstance(certificate, dict)
    print(f"bundle {bundle} ({bundle.stat().st_size / 1048576:.1f} MB)")
    print(f"  /status answered {result.started_in:.2f} s after start: {certificate['org_name']}")
    print("  signed a challenge (RS256, verified); foreign origin refused; autostart entry written")
    print("agent-dist-check: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
