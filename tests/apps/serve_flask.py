"""A real Flask app for `wsgi2asgi serve` tests: JSON, a form post and a streamed response."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    """Answer JSON built from the path and the query string."""
    return {"hello": name, "lang": request.args.get("lang", "en"), "root": request.root_path}


@app.post("/form")
def form() -> str:
    """Echo a form field, so the request body crosses the adapter."""
    return "got " + request.form["field"]


@app.get("/stream")
def stream() -> Response:
    """Stream three chunks from a generator."""

    def chunks() -> Iterator[str]:
        for number in range(3):
            yield f"chunk{number};"

    return Response(stream_with_context(chunks()), mimetype="text/plain")
