"""A Flask app with sync and async views, a blueprint and a class-based view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask
from flask.views import MethodView


def logged(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    return wrapper


class ItemAPI(MethodView):
    async def get(self, id: int) -> str:
        return f"item {id}"

    async def delete(self, id: int) -> str:
        return "deleted"


def create_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    users = Blueprint("users", __name__, url_prefix="/users")

    @app.get("/")
    def index() -> str:
        return "index"

    @app.route("/report", methods=["GET", "POST"])
    @logged
    async def report() -> str:
        return "report"

    @users.get("/<int:id>")
    def show(id: int) -> str:
        return f"user {id}"

    app.register_blueprint(users)
    app.add_url_rule("/items/<int:id>", view_func=ItemAPI.as_view("item"))
    return app


app = create_app()
