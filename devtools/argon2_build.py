"""Rebuild argon2-cffi-bindings for this CPU's AVX2 when it has it: ``python -m
devtools.argon2_build requirements.lock`` (the Makefile's venv step runs it).

The PyPI wheel is built for any x86-64 CPU (SSE2). The same package built from its source
distribution with ``-mavx2`` verifies an argon2id hash at the default parameters (2 passes,
19 MiB) in about half the time (docs/performance.md), and the password check is the largest part
of a login's CPU. The source is the one the lock pins, hash checked (pip fetches the build's own
tools, scikit-build-core and cmake, unpinned, as for any source build). Where the CPU lacks AVX2,
or the build fails (no compiler), the wheel stays: the hashes are the same either way.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "argon2-cffi-bindings"


def has_avx2(cpuinfo: str, machine: str) -> bool:
    """True on an x86-64 CPU whose flags include avx2 (``/proc/cpuinfo``'s text)."""
    if machine not in ("x86_64", "AMD64"):
        return False
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return "avx2" in flags.partition(":")[2].split()


def pinned_requirement(lock_text: str, package: str = PACKAGE) -> str:
    """The lock's entry for ``package``: its ``name==version`` line and its hash lines."""
    lines = lock_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{package}==")), None)
    if start is None:
        raise LookupError(f"{package} is not pinned in the lock")
    entry = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    --hash="):
            break
        entry.append(line)
    return "\n".join(entry).rstrip(" \\") + "\n"


def rebuild(lock: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "argon2.txt"
        requirement.write_text(pinned_requirement(lock.read_text()))
        env = dict(os.environ, ARGON2_CFFI_USE_SSE2="1")  # the optimised implementation...
        env["CFLAGS"] = f"{env.get('CFLAGS', '')} -O3 -mavx2".strip()  # ...with AVX2
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes"]
        command += [
            "--no-deps",
            "--force-reinstall",
            "--no-binary",
            PACKAGE,
            "-r",
            str(requirement),
        ]
        return subprocess.run(command, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    if not has_avx2(text, platform.machine()):
        print(f"{PACKAGE}: no AVX2 on this CPU, the wheel stays")
        return 0
    if rebuild(Path(argv[0])) != 0:
        print(f"{PACKAGE}: the AVX2 build failed, the wheel stays", file=sys.stderr)
        return 0
    print(f"{PACKAGE}: built from source with AVX2")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
