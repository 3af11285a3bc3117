"""The install's choice of argon2 build (devtools/argon2_build.py): AVX2 only where the CPU has
it, from exactly the source the lock pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.argon2_build import has_avx2, pinned_requirement

ROOT = Path(__file__).resolve().parents[2]
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 {extra} bmi1
bugs\t\t: spectre_v1
"""


@pytest.mark.parametrize(
    ("extra", "machine", "expected"),
    [
        ("avx avx2", "x86_64", True),
        ("avx", "x86_64", False),  # AVX without AVX2
        ("avx512f", "x86_64", False),  # a flag that merely starts like it
        ("avx2", "aarch64", False),
    ],
)
def test_avx2_is_read_from_the_cpu_flags(extra, machine, expected):
    assert has_avx2(CPUINFO.format(extra=extra), machine) is expected


def test_no_cpuinfo_means_no_avx2():
    assert has_avx2("", "x86_64") is False


def test_the_requirement_is_the_locks_entry_with_every_hash():
    lock = (ROOT / "requirements.lock").read_text()
    entry = pinned_requirement(lock)
    lines = entry.splitlines()

    assert lines[0].startswith("argon2-cffi-bindings==")
    assert len(lines) > 2 and all(line.startswith("    --hash=sha256:") for line in lines[1:])
    assert all(line in lock for line in lines)
    assert not entry.rstrip().endswith("\\")  # a continuation would swallow the next line


def test_an_unpinned_package_is_an_error():
    with pytest.raises(LookupError, match="argon2-cffi-bindings is not pinned"):
        pinned_requirement("flask==3.1.0 \\\n    --hash=sha256:00\n")
