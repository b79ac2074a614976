"""``wsgi2asgi.fanout``: the lifespan of a tree of apps, each distinct app started once, in the
listed order, with a state of its own, and stopped in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.servers import start_server
from wsgi2asgi.exceptions import LifespanFailed
from wsgi2asgi.lifespan import LifespanDriver
from wsgi2asgi.routing import Host, Mount, ProtocolRouter, Router
from wsgi2asgi.testing import AsyncTestClient
from wsgi2asgi.typing import ASGIApp, Receive, Scope, Send


class Recorder:
    """A lifespan-speaking app that records its lifecycle into a shared log."""

    def __init__(self, name: str, log: list[str], fail: str | None = None) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        if self.fail == "startup":
            await send({"type": "lifespan.startup.failed", "message": f"{self.name} broke"})
            return
        scope["state"][self.name] = True
        self.log.append(f"start {self.name}")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        self.log.append(f"stop {self.name}")
        if self.fail == "shutdown":
            await send({"type": "lifespan.shutdown.failed", "message": f"{self.name} stuck"})
            return
        await send({"type": "lifespan.shutdown.complete"})


async def no_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("I only speak http")


async def test_router_lifespan_reaches_every_app_in_order_and_back() -> None:
    log: list[str] = []
    inner = Router([Mount("/c", Recorder("c", log)), Mount("/d", no_lifespan)])
    app = Router(
        [Mount("/a", Recorder("a", log)), Mount("/b", inner), Mount("", Recorder("z", log))]
    )
    state: dict[str, Any] = {}
    driver = LifespanDriver(app, state=state, required=True)
    await driver.startup()
    # Startup in the listed order; each app fills a state of its own.
    assert log == ["start a", "start c", "start z"]
    assert list(state) == ["wsgi2asgi.app_states"]
    assert [s for s in state["wsgi2asgi.app_states"].values() if s] == [
        {"a": True},
        {"c": True},
        {"z": True},
    ]
    await driver.shutdown()
    assert log[3:] == ["stop z", "stop c", "stop a"]


async def test_router_lifespan_failure_names_the_mount_and_stops_the_started() -> None:
    log: list[str] = []
    app = Router(
        [
            Mount("/first", Recorder("first", log)),
            Mount("/broken", Recorder("broken", log, fail="startup")),
            Mount("", Recorder("never", log)),
        ]
    )
    driver = LifespanDriver(app, name="site", required=True)
    with pytest.raises(LifespanFailed) as info:
        await driver.startup()
    assert "/broken" in str(info.value)
    assert "broken broke" in str(info.value)
    assert log == ["start first", "stop first"]
    await driver.aclose()


async def test_router_lifespan_shutdown_failure_still_stops_all() -> None:
    log: list[str] = []
    app = Router(
        [Mount("/a", Recorder("a", log, fail="shutdown")), Mount("/b", Recorder("b", log))]
    )
    driver = LifespanDriver(app, required=True)
    await driver.startup()
    with pytest.raises(LifespanFailed, match="a stuck"):
        await driver.shutdown()
    # Equal-length prefixes keep their listed order; shutdown goes in reverse.
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_router_lifespan_same_app_mounted_twice_starts_once() -> None:
    log: list[str] = []
    shared = Recorder("shared", log)
    app = Router([Mount("/x", shared), Host("example.com", shared)])
    driver = LifespanDriver(app, required=True)
    await driver.startup()
    await driver.shutdown()
    assert log == ["start shared", "stop shared"]


async def test_starlette_lifespan_runs_when_mounted() -> None:

    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        events.append("up")
        yield {"db": "connected"}
        events.append("down")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.db)

    api = Starlette(routes=[Route("/", home)], lifespan=lifespan)
    app = Router([Mount("/api", api)])
    # The client runs the lifespan and copies its state into each request, as a server does.
    async with AsyncTestClient(app, lifespan="on") as client:
        assert events == ["up"]
        assert client.state["wsgi2asgi.app_states"] == {id(api): {"db": "connected"}}
        assert (await client.get("/api/")).text == "connected"
    assert events == ["up", "down"]


def starlette_with_lifespan(label: str, log: list[str]) -> Starlette:
    """A Starlette app whose lifespan logs its start and stop and stores ``pool`` in state."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, str]]:
        log.append(f"start {label}")
        yield {"pool": f"pool of {label}"}
        log.append(f"stop {label}")

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.pool)

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


async def test_router_lifespan_app_mounted_at_two_depths_runs_once() -> None:
    log: list[str] = []
    shared = starlette_with_lifespan("shared", log)
    app = Router([Mount("/api", shared), Mount("/outer", Router([Mount("/api2", shared)]))])
    driver = LifespanDriver(app, required=True)
    await driver.startup()
    await driver.shutdown()
    assert log == ["start shared", "stop shared"]


async def test_router_lifespan_nested_failure_names_the_full_mount_path() -> None:
    log: list[str] = []
    app = Router([Mount("/outer", Router([Mount("/inner", Recorder("x", log, fail="startup"))]))])
    driver = LifespanDriver(app, required=True)
    with pytest.raises(LifespanFailed, match="/outer/inner"):
        await driver.startup()
    await driver.aclose()


def test_router_lifespan_state_is_per_app() -> None:
    log: list[str] = []
    app = Router(
        [
            Mount("/a", starlette_with_lifespan("a", log)),
            Mount("/b", Router([Mount("/c", starlette_with_lifespan("c", log))])),
            Host("b.test", starlette_with_lifespan("host", log)),
            Mount("/p", ProtocolRouter({"http": starlette_with_lifespan("p", log)})),
        ]
    )
    running = start_server(app, lifespan="on")
    try:
        with httpx.Client(base_url=running.url) as client:
            assert client.get("/a/").text == "pool of a"
            assert client.get("/b/c/").text == "pool of c"
            assert client.get("/", headers={"host": "b.test"}).text == "pool of host"
            assert client.get("/p/").text == "pool of p"
    finally:
        assert running.stop() == 0
    assert log[:4] == ["start a", "start c", "start host", "start p"]
    assert log[4:] == ["stop p", "stop host", "stop c", "stop a"]


async def test_protocol_router_with_its_own_lifespan_app_is_driven_as_one_app() -> None:
    log: list[str] = []
    lifespan_app = starlette_with_lifespan("lifespan", log)
    app = Router([Mount("/x", ProtocolRouter({"http": no_lifespan, "lifespan": lifespan_app}))])
    state: dict[str, Any] = {}
    driver = LifespanDriver(app, state=state, required=True)
    await driver.startup()
    # The router's lifespan app fills the state its http app's requests get.
    protocol_router = app.routes[0].app
    assert state["wsgi2asgi.app_states"] == {id(protocol_router): {"pool": "pool of lifespan"}}
    await driver.shutdown()
    assert log == ["start lifespan", "stop lifespan"]


# -- apps that take no part in the lifespan the usual way (#12.3, #12.4) ------------------------


async def returns_after_startup(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "lifespan.startup.complete"})  # and returns: nothing to shut down


async def test_router_with_an_app_answering_lifespan_with_http_starts_and_stops() -> None:
    log: list[str] = []
    driver = LifespanDriver(Router([Mount("/bare", Response("hi")), Mount("/app", logged(log))]))
    await driver.startup()  # not lifespan.startup.failed
    await driver.shutdown()
    assert driver.supported is True
    assert log == ["startup", "shutdown"]


async def test_router_with_an_app_returning_after_startup_shuts_down_cleanly() -> None:
    log: list[str] = []
    router = Router([Mount("/quick", returns_after_startup), Mount("/app", logged(log))])
    driver = LifespanDriver(router)
    await driver.startup()
    await driver.shutdown()  # lifespan.shutdown.complete, not .failed
    assert log == ["startup", "shutdown"]


def logged(log: list[str]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            phase = (await receive())["type"].removeprefix("lifespan.")
            log.append(phase)
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return

    return app
