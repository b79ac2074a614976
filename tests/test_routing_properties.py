"""Property-based tests of the router's path matching: a mount never escapes its prefix."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wsgi2asgi.prefixes import mount_prefix
from wsgi2asgi.routing import Mount, Router, route_path

# Path segments as a server decodes them: any characters but "/", including "%", spaces,
# non-ASCII and look-alikes of the prefix.
segment = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
segments = st.lists(segment, min_size=0, max_size=4)
# Mount prefixes: what mount_prefix accepts (RFC 3986 pchar without "%", or non-ASCII
# printable characters; no dot-segment).
prefix_segment = st.text(
    alphabet=st.one_of(
        st.sampled_from("abcXYZ019-._~!$&'()*+,;=:@"),
        st.characters(min_codepoint=0x80).filter(str.isprintable),
    ),
    min_size=1,
    max_size=8,
).filter(lambda text: text not in (".", ".."))
prefixes = st.lists(prefix_segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


def path_of(parts: list[str], trailing: bool = False) -> str:
    return "/" + "/".join(parts) + ("/" if trailing and parts else "")


def http_scope(path: str, root_path: str = "") -> dict[str, Any]:
    raw = (root_path + path).encode("utf-8")
    return {"type": "http", "path": root_path + path, "raw_path": raw, "root_path": root_path}


@given(prefixes, segments, st.booleans(), st.sampled_from(["", "/outer", "/a/b"]))
def test_mount_matches_exactly_its_prefix_and_below(
    prefix: str, parts: list[str], trailing: bool, root: str
) -> None:
    path = path_of(parts, trailing)
    scope = http_scope(path, root)
    child = Mount(prefix, lambda *a: None).match(scope)
    inside = path == prefix or path.startswith(prefix + "/")
    assert (child is not None) == inside
    if child is not None:
        # The app sees root_path = everything above it, and path/raw_path untouched.
        assert child["root_path"] == root + prefix
        assert child["path"] == scope["path"]
        assert child["raw_path"] == scope["raw_path"]
        rest = route_path(child)
        assert child["root_path"] + rest == scope["path"]
        assert rest == "" or rest.startswith("/")


@given(prefixes, segment)
def test_mount_never_matches_a_sibling_sharing_the_text_prefix(prefix: str, tail: str) -> None:
    scope = http_scope(prefix + tail)
    assert Mount(prefix, lambda *a: None).match(scope) is None


@given(st.lists(prefixes, min_size=1, max_size=5, unique=True), segments)
def test_router_picks_the_longest_matching_prefix(prefixes_: list[str], parts: list[str]) -> None:
    calls: list[str] = []

    def app_for(prefix: str) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            calls.append(prefix)

        return app

    router = Router([Mount(p, app_for(p)) for p in prefixes_])
    for route in router.routes:
        path = path_of(parts)
        scope = http_scope(path)
        if route.match(scope) is not None:
            matching = [p for p in prefixes_ if path == p or path.startswith(p + "/")]
            assert isinstance(route, Mount)
            assert route.prefix == max(matching, key=len)
            break


@given(st.lists(segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)))
def test_a_prefix_is_refused_or_matches_the_path_it_names(prefix: str) -> None:
    # Any text at all: a prefix Mount accepts is one a request for that very path reaches.
    try:
        mount = Mount(prefix, lambda *a: None)
    except ValueError as exc:
        assert repr(prefix) in str(exc)
        return
    assert mount.prefix == mount_prefix(mount.prefix)
    assert mount.match(http_scope(mount.prefix)) is not None
