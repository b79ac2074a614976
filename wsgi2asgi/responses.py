"""The plain-text answers the package gives of its own accord: one wording, one set of headers.

A 404 from the router, a 500 when an app fails before its response starts, a 503 when an
adapter or the server is closing or at its limit, a 400 for a request refused before it
reaches the app, the server's 4xx for malformed input: each is ``text/plain; charset=utf-8``
with a ``Content-Length``, and its body is the status's reason phrase (RFC 9110 §15), followed
by the detail after a colon when there is one: ``Bad Request: Too many duplicate headers``.

Three forms, for the three places that answer: ASGI messages (:func:`send_plain`), a WSGI
``start_response`` call (:func:`start_plain`), and the header list for a server that frames
the response itself (:func:`plain_headers`).

Example::

    await send_plain(send, 404)                         # an ASGI app's answer
    return start_plain(start_response, 503)             # a WSGI app's answer
"""

from __future__ import annotations

import http

from wsgi2asgi.typing import Send, StartResponse

__all__ = ["plain_body", "plain_headers", "send_plain", "start_plain"]

_CONTENT_TYPE = (b"content-type", b"text/plain; charset=utf-8")


def plain_body(status: int, detail: str | None = None) -> bytes:
    """The body of a plain-text answer: the reason phrase, and ``detail`` after a colon.

    >>> plain_body(404), plain_body(400, "Too many duplicate headers")
    (b'Not Found', b'Bad Request: Too many duplicate headers')
    """
    phrase = http.HTTPStatus(status).phrase
    return (phrase if detail is None else f"{phrase}: {detail}").encode()


def plain_headers(body: bytes, *, close: bool = False) -> list[tuple[bytes, bytes]]:
    """The response headers of a plain-text ``body`` (``Connection: close`` with ``close``).

    >>> plain_headers(b"Not Found")
    [(b'content-type', b'text/plain; charset=utf-8'), (b'content-length', b'9')]
    """
    headers = [_CONTENT_TYPE, (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    return headers


async def send_plain(
    send: Send, status: int, detail: str | None = None, *, head: bool = False, close: bool = False
) -> None:
    """Answer an ASGI ``http`` request with a plain-text response.

    Example::

        await send_plain(send, 404, head=scope["method"] == "HEAD")

    Args:
        send: the ASGI send callable.
        status: the status code.
        detail: what follows the reason phrase in the body.
        head: the request is a HEAD: RFC 9110 §9.3.2, the headers GET would have
            (``Content-Length`` included) and no body.
        close: add ``Connection: close``.
    """
    body = plain_body(status, detail)
    headers = plain_headers(body, close=close)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def start_plain(
    start_response: StartResponse, status: int, detail: str | None = None
) -> list[bytes]:
    """Answer a WSGI request with a plain-text response; return the body iterable.

    Example::

        return start_plain(start_response, 503)       # inside a WSGI app

    Args:
        start_response: the PEP 3333 ``start_response`` callable.
        status: the status code.
        detail: what follows the reason phrase in the body.
    """
    body = plain_body(status, detail)
    # PEP 3333: the status is "a status code and a reason phrase ... separated by a single
    # space"; header names and values are native strings.
    start_response(
        f"{status} {http.HTTPStatus(status).phrase}",
        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in plain_headers(body)],
    )
    return [body]
