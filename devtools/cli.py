"""The ``idp-dev`` command: ``idp-dev setup`` and ``idp-dev run`` (what ``make run`` calls)."""

from __future__ import annotations

from devtools.demo import run, setup
from idp.cli import command_group

main = command_group(
    "idp-dev",
    help_text="The development environment of 统一认证登录平台 (demo data, demo UKey, all services).",
)
main.add_command(setup)
main.add_command(run)

if __name__ == "__main__":
    main()
