"""``adapters.django``: a real Django project mounted by our router, over ASGI and a real server.

Django's settings are process-wide: :func:`tests.apps.django_app.configure` sets them once and
each test overrides ``ROOT_URLCONF`` (this module) and ``MIDDLEWARE`` around building the app,
since Django's handlers read the middleware when they are built.

``interface="auto"`` (the default) sends each request down one of two paths: a sync view's
through Django's ``WSGIHandler`` on one pool thread, an async view's through its
``ASGIHandler`` on the loop. The tests tell the paths apart by what Django itself does:
``request_started`` carries ``environ`` from the WSGI handler and ``scope`` from the ASGI one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async as asgiref_sync_to_async
from django.db import transaction
from django.dispatch import Signal
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import LocalePrefixPattern, URLResolver, path, register_converter
from django.utils.deprecation import MiddlewareMixin
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.servers import start_server
from wsgi2asgi.bridges import sync_to_async as ours_sync_to_async
from wsgi2asgi.routing import Mount, Router

HERE = Path(__file__)
DB_ALIAS = "w2a_atomic"


class Record:
    """What ran where during one test's requests: ``(event, thread ident)`` in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        # The Thread behind each ident: an ident can be reused once its thread has ended, a
        # Thread object held here cannot.
        self.thread_objects: dict[int, threading.Thread] = {}
        self.handlers: list[str] = []  # "wsgi" or "asgi", from each request_started
        self.lock = threading.Lock()
        self.view_started = threading.Event()
        self.finished = threading.Event()

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append((event, threading.get_ident()))
            self.thread_objects[threading.get_ident()] = threading.current_thread()
        if event == "view":
            self.view_started.set()
        elif event == "finished":
            self.finished.set()

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def threads(self, *names: str) -> set[int]:
        return {ident for name, ident in self.events if not names or name in names}

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


RECORD = Record()


def on_started(sender: Any, **kwargs: Any) -> None:
    RECORD.handlers.append("wsgi" if "environ" in kwargs else "asgi")
    RECORD.add("started")


def on_finished(sender: Any, **kwargs: Any) -> None:
    RECORD.add("finished")


def recording_middleware(get_response: Any) -> Any:
    """A sync-only middleware (Django adapts it on the async path)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        RECORD.add("middleware-in")
        response = get_response(request)
        RECORD.add("middleware-out")
        return response

    return middleware


class SwitchedURLs:
    """The URLconf a middleware picks for ``/switch``: there, the view is async."""

    urlpatterns: list[Any] = []  # filled below, once the views exist


def switching_middleware(get_response: Any) -> Any:
    """Set ``request.urlconf`` for ``/switch``, as django-hosts or a tenant middleware does."""

    def middleware(request: HttpRequest) -> HttpResponse:
        if request.path_info == "/switch":
            request.urlconf = SwitchedURLs
        return get_response(request)

    return middleware


class RefusingConverter:
    """A path converter whose lookup fails while the URL is resolved (a lookup on the loop)."""

    regex = "[a-z]+"

    def to_python(self, value: str) -> str:
        raise LookupError(f"cannot look {value!r} up here")

    def to_url(self, value: str) -> str:
        return value


register_converter(RefusingConverter, "w2a_refusing")


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"index {request.path} {request.META['QUERY_STRING']}")


def sync_page(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    return HttpResponse("sync page")


def root_switch_page(request: HttpRequest) -> HttpResponse:
    """``/switch`` in ``ROOT_URLCONF``: never reached, the middleware switches URLconfs."""
    RECORD.add("view")
    return HttpResponse("the root URLconf's view")


async def async_page(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    await asyncio.sleep(0)
    return HttpResponse("async page")


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        try:
            for i in range(3):
                RECORD.add("chunk")
                yield f"{i},".encode()
        finally:
            RECORD.add("generator-closed")

    RECORD.add("view")
    return StreamingHttpResponse(chunks())


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            RECORD.add("chunk")
            await asyncio.sleep(0)
            yield f"{i},".encode()

    RECORD.add("view")
    return StreamingHttpResponse(chunks())


def download(request: HttpRequest) -> FileResponse:
    RECORD.add("view")
    return FileResponse(HERE.open("rb"))


def digest(request: HttpRequest) -> JsonResponse:
    RECORD.add("view")
    body = request.body
    return JsonResponse({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})


async def async_digest(request: HttpRequest) -> JsonResponse:
    RECORD.add("view")
    body = request.body
    return JsonResponse({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})


def endless(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        try:
            for _ in range(100_000):  # bounded: the client leaves long before
                yield b"x" * 65536
        finally:
            RECORD.add("generator-closed")

    RECORD.add("view")
    return StreamingHttpResponse(chunks())


async def async_wait(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        RECORD.add("cancelled")
        raise
    return HttpResponse("too late")


def read_upload(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    try:
        request.body  # noqa: B018
    except OSError as exc:  # Django's UnreadablePostError
        RECORD.add(type(exc).__name__)
        raise
    return HttpResponse("read")


def db_write(request: HttpRequest) -> HttpResponse:
    from django.db import connections

    connection = connections[DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO note (text) VALUES (%s)", [request.GET["text"]])
    RECORD.add("in-atomic" if connection.in_atomic_block else "autocommit")
    if "fail" in request.GET:
        raise RuntimeError("the view failed after writing")
    return HttpResponse("written")


def db_count(request: HttpRequest) -> HttpResponse:
    from django.db import connections

    with connections[DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM note")
        (count,) = cursor.fetchone()
    return HttpResponse(str(count))


async def sensitive(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    for _ in range(3):
        ident = await asgiref_sync_to_async(threading.get_ident, thread_sensitive=True)()
        with RECORD.lock:
            RECORD.events.append(("sync_to_async", ident))
    return HttpResponse("sensitive")


urlpatterns = [
    path("", index),
    path("sync", sync_page),
    path("async", async_page),
    path("switch", root_switch_page),
    path("fragile/<w2a_refusing:name>", sync_page),
    path("sync-stream", sync_stream),
    path("async-stream", async_stream),
    path("download", download),
    path("digest", digest),
    path("async-digest", async_digest),
    path("endless", endless),
    path("async-wait", async_wait),
    path("upload", read_upload),
    path("db/write", db_write),
    path("db/count", db_count),
    path("sensitive", sensitive),
    # i18n_patterns(...), which reads the settings at import
    URLResolver(
        LocalePrefixPattern(), [path("i18n/sync", sync_page), path("i18n/async", async_page)]
    ),
]
SwitchedURLs.urlpatterns = [path("switch", async_page)]

COMMON = ["django.middleware.common.CommonMiddleware"]
RECORDING = [f"{__name__}.recording_middleware"]
SWITCHING = [f"{__name__}.switching_middleware", *RECORDING]
INTERFACES = ["auto", "asgi", "wsgi"]


@pytest.fixture
def django_settings() -> Iterator[None]:
    from django.core.signals import request_finished, request_started
    from django.test.utils import override_settings

    from tests.apps import django_app

    django_app.configure()
    RECORD.reset()
    request_started.connect(on_started, dispatch_uid=__name__)
    request_finished.connect(on_finished, dispatch_uid=__name__)
    try:
        with override_settings(
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["*"],
            MIDDLEWARE=[],
            DATA_UPLOAD_MAX_MEMORY_SIZE=16 * 1024 * 1024,
        ):
            yield
    finally:
        request_started.disconnect(dispatch_uid=__name__)
        request_finished.disconnect(dispatch_uid=__name__)


@pytest.fixture
def atomic_db(tmp_path: Path, django_settings: None) -> Iterator[None]:
    """A SQLite database with ``ATOMIC_REQUESTS`` under an alias of its own, in a temp dir.

    ``override_settings(DATABASES=...)`` does not reach the connection handler (Django warns
    so); its settings are swapped directly, under an alias no thread has a connection for.
    """
    from django.db import connections

    previous = connections.settings
    databases = dict(previous)
    databases[DB_ALIAS] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "atomic.sqlite3"),
        "ATOMIC_REQUESTS": True,
    }
    connections.settings = connections.configure_settings(databases)
    try:
        with connections[DB_ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)")
        connections[DB_ALIAS].close()
        yield
    finally:
        connections[DB_ALIAS].close()
        del connections[DB_ALIAS]
        connections.settings = previous


def mounted(interface: str = "asgi", middleware: list[str] | None = None, **options: Any) -> Router:
    from django.test.utils import override_settings

    from adapters.django import django_app

    with override_settings(MIDDLEWARE=middleware or []):
        return Router([Mount("/dj", django_app(interface=interface, **options))])  # type: ignore[arg-type]


async def request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, url, **kwargs)


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("interface", ["asgi", "auto"])
@pytest.mark.parametrize("middleware", [[], COMMON], ids=["plain", "common-middleware"])
@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
async def test_bare_prefix_of_an_asgi_django_mount_redirects_with_308(
    interface: str, middleware: list[str], method: str
) -> None:
    app = mounted(interface, middleware)
    response = await request(app, method, "/dj?a=1&b=%C3%A9")
    assert response.status_code == 308
    assert response.headers["location"] == "/dj/?a=1&b=%C3%A9"
    assert response.content == b""
    followed = await request(app, "GET", response.headers["location"])
    assert followed.text == "index /dj/ a=1&b=%C3%A9"


@pytest.mark.usefixtures("django_settings")
async def test_bare_prefix_redirect_keeps_the_percent_encoded_prefix() -> None:
    from adapters.django import django_app

    app = Router([Mount("/café", django_app())])
    response = await request(app, "GET", "/caf%C3%A9")
    assert response.status_code == 308
    assert response.headers["location"] == "/caf%C3%A9/"


@pytest.mark.usefixtures("django_settings")
async def test_bare_prefix_of_a_wsgi_django_mount_is_answered_by_django() -> None:
    # Django's WSGIHandler answers an empty PATH_INFO as "/": it does answer, so no redirect.
    response = await request(mounted("wsgi"), "GET", "/dj")
    assert response.status_code == 200
    assert response.text == "index /dj/ "


def websocket_status(port: int, path: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{port}{path}", open_timeout=5)
    return info.value.response.status_code


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("interface", INTERFACES)
def test_websocket_to_a_django_mount_or_nowhere_is_403(loop: str, interface: str) -> None:
    running = start_server(mounted(interface), loop=loop, lifespan="on")
    try:
        assert websocket_status(running.port, "/dj/chat") == 403
        assert websocket_status(running.port, "/dj") == 403  # never redirected
        assert websocket_status(running.port, "/nowhere") == 403
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/dj/").text == "index /dj/ "  # the server is fine afterwards
    finally:
        assert running.stop() == 0


# -- interface="auto": which path each request takes ------------------------------------------


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize(
    ("interface", "url", "expected"),
    [
        ("auto", "/dj/sync", ["wsgi"]),
        ("auto", "/dj/async", ["asgi"]),
        ("auto", "/dj/nowhere", ["wsgi"]),  # no view: Django's 404 handling is sync-safe
        ("asgi", "/dj/sync", ["asgi"]),
        ("asgi", "/dj/async", ["asgi"]),
        ("wsgi", "/dj/sync", ["wsgi"]),
        ("wsgi", "/dj/async", ["wsgi"]),
    ],
)
async def test_each_interface_serves_sync_and_async_views_through_its_handler(
    interface: str, url: str, expected: list[str]
) -> None:
    response = await request(mounted(interface), "GET", url)
    if url.endswith("nowhere"):
        assert response.status_code == 404
    else:
        assert response.status_code == 200
        assert response.text == url.removeprefix("/dj/") + " page"
    assert RECORD.handlers == expected


@pytest.mark.usefixtures("django_settings")
async def test_auto_is_the_default_interface() -> None:
    from adapters.django import django_app

    app = Router([Mount("/dj", django_app())])
    await request(app, "GET", "/dj/sync")
    await request(app, "GET", "/dj/async")
    assert RECORD.handlers == ["wsgi", "asgi"]


@pytest.mark.usefixtures("django_settings")
def test_wsgi_options_bound_the_sync_path_and_are_refused_by_asgi() -> None:
    from adapters.django import django_app

    app: Any = django_app(max_threads=3)
    assert app.handler.sync_app.max_threads == 3
    with pytest.raises(ValueError, match="interface='asgi'"):
        django_app(interface="asgi", max_threads=3)
    with pytest.raises(ValueError, match="'auto', 'asgi' or 'wsgi'"):
        django_app(interface="both")  # type: ignore[arg-type]


@pytest.mark.usefixtures("django_settings")
async def test_a_sync_view_runs_on_one_thread_in_wsgi_signal_order() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto", RECORDING), "GET", "/dj/sync")
    assert response.text == "sync page"
    assert RECORD.names() == ["started", "middleware-in", "view", "middleware-out", "finished"]
    (thread,) = RECORD.threads()  # the signals, the middleware and the view: one thread
    assert thread != loop_thread
    assert RECORD.handlers == ["wsgi"]


@pytest.mark.usefixtures("django_settings")
async def test_an_async_view_runs_on_the_loop_and_its_sync_parts_on_one_thread() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto", RECORDING), "GET", "/dj/async")
    assert response.text == "async page"
    assert RECORD.handlers == ["asgi"]
    assert RECORD.threads("view") == {loop_thread}
    (sync_thread,) = RECORD.threads("started", "middleware-in", "middleware-out", "finished")
    assert sync_thread != loop_thread


@pytest.mark.usefixtures("django_settings")
async def test_sync_to_async_in_an_async_view_reaches_the_requests_one_thread() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto", RECORDING), "GET", "/dj/sensitive")
    assert response.text == "sensitive"
    assert RECORD.threads("view") == {loop_thread}
    (sync_thread,) = RECORD.threads("middleware-in", "sync_to_async", "middleware-out")
    assert sync_thread != loop_thread
    assert RECORD.names().count("sync_to_async") == 3


@pytest.mark.usefixtures("django_settings")
async def test_a_sync_stream_is_iterated_and_closed_on_the_views_thread() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto", RECORDING), "GET", "/dj/sync-stream")
    assert response.text == "0,1,2,"
    assert RECORD.names() == [
        "started",
        "middleware-in",
        "view",
        "middleware-out",
        "chunk",
        "chunk",
        "chunk",
        "generator-closed",
        "finished",
    ]
    (thread,) = RECORD.threads()
    assert thread != loop_thread


@pytest.mark.usefixtures("django_settings")
async def test_an_async_stream_is_iterated_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto"), "GET", "/dj/async-stream")
    assert response.text == "0,1,2,"
    assert RECORD.handlers == ["asgi"]
    assert RECORD.threads("view", "chunk") == {loop_thread}


@pytest.mark.usefixtures("django_settings")
async def test_a_file_response_is_sent_whole_and_closed() -> None:
    response = await request(mounted("auto"), "GET", "/dj/download")
    assert response.content == HERE.read_bytes()
    assert response.headers["content-length"] == str(HERE.stat().st_size)
    assert RECORD.handlers == ["wsgi"]
    assert RECORD.names()[-1] == "finished"  # response.close(): the file too
    (thread,) = RECORD.threads()
    assert thread != threading.get_ident()


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize(("url", "handler"), [("/dj/digest", "wsgi"), ("/dj/async-digest", "asgi")])
async def test_request_body_of_a_large_upload(url: str, handler: str) -> None:
    body = bytes(range(256)) * (5 * 4096)  # 5 MiB
    response = await request(mounted("auto"), "POST", url, content=body)
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert RECORD.handlers == [handler]


@pytest.mark.usefixtures("django_settings")
async def test_a_chunked_upload_to_a_sync_view_takes_the_async_path() -> None:
    # Django's WSGIRequest reads CONTENT_LENGTH bytes, so a body of unknown length would read
    # as empty there; ASGIHandler reads the body whole.
    body = b"chunked " * 10_000

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    response = await request(mounted("auto"), "POST", "/dj/digest", content=chunks())
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert RECORD.handlers == ["asgi"]


@pytest.mark.usefixtures("atomic_db")
@pytest.mark.parametrize("interface", INTERFACES)
async def test_atomic_requests_wrap_a_sync_view_in_a_transaction(interface: str) -> None:
    app = mounted(interface)
    assert (await request(app, "GET", "/dj/db/write?text=kept")).text == "written"
    failed = await request(app, "GET", "/dj/db/write?text=lost&fail=1")
    assert failed.status_code == 500
    assert (await request(app, "GET", "/dj/db/count")).text == "1"  # the failed write rolled back
    assert RECORD.names().count("in-atomic") == 2
    expected = "asgi" if interface == "asgi" else "wsgi"
    assert RECORD.handlers == [expected] * 3


# -- what the adapter cannot know in advance -------------------------------------------------


@pytest.mark.usefixtures("django_settings")
async def test_a_middleware_that_switches_urlconf_to_an_async_view(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # ROOT_URLCONF maps /switch to a sync view; the middleware's URLconf to an async one.
    app = mounted("auto", SWITCHING)
    with caplog.at_level(logging.INFO):
        first = await request(app, "GET", "/dj/switch")
        second = await request(app, "GET", "/dj/switch")
        third = await request(app, "GET", "/dj/switch")
    # The first request took the sync path and Django ran the async view there as under any
    # WSGI server (async_to_sync); from then on that view's requests take the async path.
    assert [first.text, second.text, third.text] == ["async page"] * 3
    assert RECORD.handlers == ["wsgi", "asgi", "asgi"]
    views = [ident for name, ident in RECORD.events if name == "view"]
    assert views[1:] == [threading.get_ident()] * 2  # on the loop
    notes = [r for r in caplog.records if "async path" in r.getMessage()]
    assert len(notes) == 1
    # Other sync views keep the sync path (the decision is per view the root URLconf names).
    await request(app, "GET", "/dj/sync")
    assert RECORD.handlers[-1] == "wsgi"


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("interface", ["auto", "asgi"])
async def test_a_url_that_cannot_be_resolved_in_advance_takes_the_async_path(
    interface: str,
) -> None:
    # The converter fails while resolving: the view is unknown, so the always-correct path
    # serves the request, and Django answers as ASGIHandler does (its resolver fails too).
    response = await request(mounted(interface), "GET", "/dj/fragile/x")
    assert response.status_code == 500
    assert RECORD.handlers == ["asgi"]


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize(
    ("url", "handler"),
    [
        ("/dj/en/i18n/async", "asgi"),
        ("/dj/fr/i18n/async", "asgi"),  # resolves once LocaleMiddleware has activated "fr"
        ("/dj/fr/i18n/sync", "wsgi"),
        ("/dj/xx/i18n/async", "wsgi"),  # no such language: 404
    ],
)
async def test_i18n_patterns_are_resolved_in_the_language_of_the_path(
    url: str, handler: str
) -> None:
    app = mounted("auto", ["django.middleware.locale.LocaleMiddleware"])
    response = await request(app, "GET", url)
    assert response.status_code == (404 if "/xx/" in url else 200)
    assert RECORD.handlers == [handler]
    # The language of one request's path does not stay active for the next.
    await request(app, "GET", "/dj/en/i18n/sync")
    assert RECORD.handlers[-1] == "wsgi"


# -- disconnects, through a real server ------------------------------------------------------


def send_then_leave(port: int, head: bytes, *, read: bool) -> None:
    """Send ``head``; wait for the view (and the response's first bytes if ``read``); leave."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        assert RECORD.view_started.wait(5)
        if read:
            assert sock.recv(65536)


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_leaving_a_sync_stream_closes_it_on_the_views_thread(loop: str) -> None:
    running = start_server(mounted("auto"), loop=loop)
    try:
        send_then_leave(running.port, b"GET /dj/endless HTTP/1.1\r\nHost: t\r\n\r\n", read=True)
        assert RECORD.finished.wait(10)
        assert RECORD.names() == ["started", "view", "generator-closed", "finished"]
        assert len(RECORD.threads()) == 1
    finally:
        assert running.stop() == 0


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_leaving_an_async_view_cancels_it(loop: str) -> None:
    running = start_server(mounted("auto"), loop=loop)
    try:
        send_then_leave(running.port, b"GET /dj/async-wait HTTP/1.1\r\nHost: t\r\n\r\n", read=False)
        assert RECORD.finished.wait(10)
        assert RECORD.names() == ["started", "view", "cancelled", "finished"]
        assert RECORD.handlers == ["asgi"]
    finally:
        assert running.stop() == 0


@pytest.mark.usefixtures("django_settings")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_client_leaving_mid_upload_to_a_sync_view(loop: str) -> None:
    # As under gunicorn: the view's read fails (UnreadablePostError, an OSError), Django
    # answers 500 to nobody, and the request ends on its thread with request_finished.
    running = start_server(mounted("auto"), loop=loop)
    head = b"POST /dj/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n"
    try:
        send_then_leave(running.port, head + b"x" * 10_000, read=False)
        assert RECORD.finished.wait(10)
        assert RECORD.names() == ["started", "view", "UnreadablePostError", "finished"]
        assert len(RECORD.threads()) == 1
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/dj/sync").text == "sync page"
    finally:
        assert running.stop() == 0


# -- bridges="wsgi2asgi": Django's own crossings through our bridges (opt-in) -----------------


class RecordingMixin(MiddlewareMixin):
    """A ``MiddlewareMixin`` middleware, like Django's own (sync and async capable)."""

    def process_request(self, request: HttpRequest) -> None:
        RECORD.add("mixin-in")

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        RECORD.add("mixin-out")
        return response


class AtomicMiddleware(MiddlewareMixin):
    """Hold a transaction open from ``process_request`` to ``process_response``."""

    def process_request(self, request: HttpRequest) -> None:
        from django.db import transaction

        atomic = transaction.atomic(using=DB_ALIAS)
        atomic.__enter__()
        request.w2a_atomic = atomic  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        from django.db import transaction

        if response.status_code >= 500:
            transaction.set_rollback(True, using=DB_ALIAS)
        request.w2a_atomic.__exit__(None, None, None)  # type: ignore[attr-defined]
        return response


PING = Signal()


def on_ping(sender: Any, **kwargs: Any) -> None:
    RECORD.add("sync-receiver")


async def on_ping_async(sender: Any, **kwargs: Any) -> None:
    RECORD.add("async-receiver")


PING.connect(on_ping)
PING.connect(on_ping_async)


async def sensitive_both(request: HttpRequest) -> HttpResponse:
    """Thread-sensitive calls through both families of bridges, as user code makes them."""
    RECORD.add("view")
    for bridge, family in ((ours_sync_to_async, "ours"), (asgiref_sync_to_async, "asgiref")):
        for _ in range(2):
            ident = await bridge(threading.get_ident, thread_sensitive=True)()
            with RECORD.lock:
                RECORD.events.append((family, ident))
    await PING.asend(sender=None)
    return HttpResponse("sensitive")


def _insert_note(text: str) -> bool:
    from django.db import connections

    connection = connections[DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO note (text) VALUES (%s)", [text])
    return bool(connection.in_atomic_block)


@transaction.non_atomic_requests(using=DB_ALIAS)  # Django refuses ATOMIC_REQUESTS on async views
async def async_db_write(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    in_atomic = await asgiref_sync_to_async(_insert_note)(request.GET["text"])
    RECORD.add("in-atomic" if in_atomic else "autocommit")
    return HttpResponse("written", status=500 if "fail" in request.GET else 200)


urlpatterns += [
    path("sensitive-both", sensitive_both),
    path("db/async-write", async_db_write),
]
MIXIN = [f"{__name__}.RecordingMixin"]


@pytest.fixture
def wsgi2asgi_bridges() -> Iterator[None]:
    """Undo ``bridges="wsgi2asgi"`` (process-wide) after the test."""
    from adapters.django_bridges import use_asgiref_bridges

    try:
        yield
    finally:
        use_asgiref_bridges()


def test_django_bridges_are_asgirefs_unless_asked_and_the_switch_is_logged_once(
    django_settings: None, wsgi2asgi_bridges: None, caplog: pytest.LogCaptureFixture
) -> None:
    import asgiref.sync
    from django.core.handlers import asgi, base
    from django.utils import deprecation

    from adapters.django import django_app
    from adapters.django_bridges import use_asgiref_bridges

    django_app()
    assert base.sync_to_async is asgiref.sync.sync_to_async  # off by default
    with caplog.at_level(logging.INFO, logger="adapters.django_bridges"):
        django_app(bridges="wsgi2asgi")
        django_app(interface="asgi", bridges="wsgi2asgi")
    (note,) = [r for r in caplog.records if r.name == "adapters.django_bridges"]
    assert note.levelno == logging.INFO
    for replaced in (
        "django.core.handlers.base",
        "django.utils.deprecation",
        "ThreadSensitiveContext",
    ):
        assert replaced in note.getMessage()
    assert base.sync_to_async is not asgiref.sync.sync_to_async
    assert deprecation.sync_to_async is base.sync_to_async
    assert asgi.ThreadSensitiveContext is not asgiref.sync.ThreadSensitiveContext
    with pytest.raises(ValueError, match="use_asgiref_bridges"):
        django_app()  # never a silent mix: the process runs Django through ours now
    with pytest.raises(ValueError, match="'asgiref' or 'wsgi2asgi'"):
        django_app(bridges="ours")  # type: ignore[arg-type]
    use_asgiref_bridges()
    assert base.sync_to_async is asgiref.sync.sync_to_async
    assert asgi.ThreadSensitiveContext is asgiref.sync.ThreadSensitiveContext


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
async def test_with_wsgi2asgi_bridges_an_async_views_sync_parts_share_the_requests_thread() -> None:
    loop_thread = threading.get_ident()
    app = mounted("auto", MIXIN + RECORDING, bridges="wsgi2asgi")
    response = await request(app, "GET", "/dj/sensitive-both")
    assert response.text == "sensitive"
    assert RECORD.handlers == ["asgi"]
    names = RECORD.names()
    assert names[:8] == [
        "started",
        "mixin-in",
        "middleware-in",
        "view",
        *["ours"] * 2,
        *["asgiref"] * 2,
    ]
    assert sorted(names[8:10]) == ["async-receiver", "sync-receiver"]  # asend: concurrently
    assert names[10:] == ["middleware-out", "mixin-out", "finished"]
    assert RECORD.threads("view", "async-receiver") == {loop_thread}
    # The signals, both middleware, sync_to_async(thread_sensitive=True) from either family
    # and the signal's sync receiver: the request's one thread.
    (sync_thread,) = RECORD.threads(
        "started", "mixin-in", "middleware-in", "ours", "asgiref", "sync-receiver", "finished"
    )
    assert sync_thread != loop_thread
    # The next request gets a thread of its own, as under Django's ASGIHandler (compared as
    # Thread objects: the first thread's ident may be reused once it has ended).
    first = RECORD.thread_objects[sync_thread]
    RECORD.reset()
    await request(app, "GET", "/dj/sensitive-both")
    (next_thread,) = RECORD.threads("started", "ours", "asgiref", "finished")
    assert RECORD.thread_objects[next_thread] is not first


@pytest.mark.usefixtures("atomic_db", "wsgi2asgi_bridges")
async def test_with_wsgi2asgi_bridges_a_transaction_spans_an_async_views_request() -> None:
    app = mounted("auto", [f"{__name__}.AtomicMiddleware"], bridges="wsgi2asgi")
    assert (await request(app, "GET", "/dj/db/async-write?text=kept")).text == "written"
    failed = await request(app, "GET", "/dj/db/async-write?text=lost&fail=1")
    assert failed.status_code == 500
    assert (await request(app, "GET", "/dj/db/count")).text == "1"  # the failed one rolled back
    assert RECORD.names().count("in-atomic") == 2  # the view's write ran inside the transaction
    assert RECORD.handlers == ["asgi", "asgi", "wsgi"]


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
async def test_with_wsgi2asgi_bridges_an_async_stream_passes_the_middleware_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    response = await request(mounted("auto", MIXIN, bridges="wsgi2asgi"), "GET", "/dj/async-stream")
    assert response.text == "0,1,2,"
    assert RECORD.names() == [
        "started",
        "mixin-in",
        "view",
        "mixin-out",
        *["chunk"] * 3,
        "finished",
    ]
    assert RECORD.threads("view", "chunk") == {loop_thread}
    (sync_thread,) = RECORD.threads("started", "mixin-in", "mixin-out", "finished")
    assert sync_thread != loop_thread


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_with_wsgi2asgi_bridges_a_client_leaving_an_async_view_cancels_it(loop: str) -> None:
    # ASGIHandler sees http.disconnect (RequestAborted) and cancels the view, which is awaited
    # below the MiddlewareMixin: the cancel reaches it through the middleware's thread.
    running = start_server(mounted("auto", MIXIN, bridges="wsgi2asgi"), loop=loop)
    try:
        send_then_leave(running.port, b"GET /dj/async-wait HTTP/1.1\r\nHost: t\r\n\r\n", read=False)
        assert RECORD.finished.wait(10)
        assert RECORD.names() == ["started", "mixin-in", "view", "cancelled", "finished"]
        assert RECORD.handlers == ["asgi"]
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/dj/async").text == "async page"
    finally:
        assert running.stop() == 0


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
def test_with_wsgi2asgi_bridges_asgirefs_async_to_sync_keeps_its_thread_for_django() -> None:
    # Django's async tests, management commands and Celery tasks run async code through
    # asgiref's async_to_sync: Django's thread-sensitive crossings inside must come back to the
    # calling thread (its database connection, its open transaction), as asgiref's would.
    from asgiref.sync import async_to_sync as asgiref_async_to_sync
    from django.core.handlers import base

    from adapters.django_bridges import use_wsgi2asgi_bridges

    use_wsgi2asgi_bridges()

    async def probe() -> int:
        return await base.sync_to_async(threading.get_ident)()

    assert asgiref_async_to_sync(probe)() == threading.get_ident()


async def async_failing(request: HttpRequest) -> HttpResponse:
    RECORD.add("view")
    raise RuntimeError("the async view failed")


urlpatterns += [path("async-failing", async_failing)]


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
async def test_with_wsgi2asgi_bridges_a_failing_view_is_reported_with_its_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Django handles the error in a thread (sync_to_async(response_for_exception)) and reads
    # sys.exc_info() there: for got_request_exception's receivers and the error log.
    from django.core.signals import got_request_exception

    seen: list[BaseException | None] = []

    def on_exception(sender: Any, **kwargs: Any) -> None:
        seen.append(sys.exc_info()[1])

    got_request_exception.connect(on_exception)
    try:
        with caplog.at_level(logging.ERROR, logger="django.request"):
            app = mounted("auto", MIXIN, bridges="wsgi2asgi")
            response = await request(app, "GET", "/dj/async-failing")
    finally:
        got_request_exception.disconnect(on_exception)
    assert response.status_code == 500
    assert [str(exc) for exc in seen] == ["the async view failed"]
    (logged,) = [r for r in caplog.records if r.name == "django.request"]
    assert logged.exc_info is not None and str(logged.exc_info[1]) == "the async view failed"
    assert RECORD.names() == ["started", "mixin-in", "view", "mixin-out", "finished"]


@pytest.mark.timeout(600)
def test_djangos_own_tests_pass_with_wsgi2asgi_bridges() -> None:
    # The proof the opt-in keeps Django's semantics: Django's tests for the areas it touches,
    # from Django's source distribution (not in the wheel; fetched once by hand or by CI).
    from benchmarks import django_suite

    source = django_suite.source_dir()
    if not (source / "tests" / "runtests.py").exists():
        missing = f"no Django test suite at {source}: python -m benchmarks.django_suite --fetch"
        if os.environ.get("CI"):  # the README's test command fetches it: in CI this must run
            pytest.fail(missing)
        pytest.skip(missing)
    ours = django_suite.run_mode("wsgi2asgi", source, list(django_suite.AREAS))
    assert ours.ran > 900, ours
    if ours.broken or ours.returncode:  # compare with Django as installed: only ours count
        theirs = django_suite.run_mode("asgiref", source, list(django_suite.AREAS))
        assert sorted(ours.broken - theirs.broken) == []


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
async def test_with_wsgi2asgi_bridges_asgi_runs_a_sync_view_on_the_requests_thread() -> None:
    # interface="asgi": the sync view is reached from the loop below the middleware, and
    # Django's sync_to_async(thread_sensitive=True) takes it back to the middleware's thread.
    loop_thread = threading.get_ident()
    app = mounted("asgi", MIXIN + RECORDING, bridges="wsgi2asgi")
    assert (await request(app, "GET", "/dj/sync")).text == "sync page"
    assert RECORD.handlers == ["asgi"]
    assert RECORD.names() == [
        "started",
        "mixin-in",
        "middleware-in",
        "view",
        "middleware-out",
        "mixin-out",
        "finished",
    ]
    (thread,) = RECORD.threads()
    assert thread != loop_thread


PONG = Signal()


async def on_pong_async(sender: Any, **kwargs: Any) -> int:
    return await asgiref_sync_to_async(threading.get_ident)()


PONG.connect(on_pong_async)


@pytest.mark.usefixtures("django_settings", "wsgi2asgi_bridges")
def test_with_wsgi2asgi_bridges_signal_send_keeps_the_senders_thread() -> None:
    # Signal.send runs async receivers through (our) async_to_sync: asgiref's sync_to_async in
    # a receiver comes back to the sending thread, as with asgiref's async_to_sync, whether
    # the sender is a plain thread or runs inside asgiref's async_to_sync.
    from asgiref.sync import async_to_sync as asgiref_async_to_sync

    from adapters.django_bridges import use_wsgi2asgi_bridges

    use_wsgi2asgi_bridges()
    here = threading.get_ident()
    assert [reply for _, reply in PONG.send(sender=None)] == [here]

    async def send_from_asgirefs_thread() -> list[Any]:
        return await asgiref_sync_to_async(PONG.send)(sender=None)

    assert [reply for _, reply in asgiref_async_to_sync(send_from_asgirefs_thread)()] == [here]
