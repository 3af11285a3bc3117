from flask import Flask

from idp.config import Settings


def init_app(app: Flask, settings: Settings) -> None:
    pass
