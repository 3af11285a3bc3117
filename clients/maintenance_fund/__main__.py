"""``python -m clients.maintenance_fund --host 127.0.0.1 --port 5001``: run the demo RP."""

from __future__ import annotations

import argparse

from . import create_app
from .config import Config, ConfigError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Host and port of the Werkzeug development server."""
    parser = argparse.ArgumentParser(
        prog="python -m clients.maintenance_fund",
        description="上海市房屋维修资金管理系统（演示依赖方）",
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="listen port (default 5001)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run with the threaded Werkzeug server; this is a development demo, not a deployment."""
    args = parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as error:
        raise SystemExit(f"配置错误：{error}") from error
    create_app(config).run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
