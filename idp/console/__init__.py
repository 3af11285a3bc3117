"""The org admin console under ``/org/`` (操作员管理, 用户审核, 操作日志) and the public join
request page where staff ask to become operators (``/join``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from idp.console import join, views

    app.register_blueprint(views.bp)
    app.register_blueprint(join.bp)
