"""The README documents every setting."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from idp.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme_table():
    text = README.read_text()
    missing = [f.name for f in fields(Settings) if f"| `IDP_{f.name.upper()}` |" not in text]
    assert missing == []
