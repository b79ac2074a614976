"""``wsgi2asgi.prefixes``: mount prefixes and the scope at a mount boundary."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgi2asgi.prefixes import mount_prefix, spec_form

# Path segments as a server decodes them: any characters but "/".
segment = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
segments = st.lists(segment, min_size=0, max_size=4)


def path_of(parts: list[str]) -> str:
    return "/" + "/".join(parts)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("/a%20b", "'%' never matches"),
        ("/caf%C3%A9", "'%' never matches"),
        ("/fl ask", "' ' is not allowed"),
        ("/a\tb", "'\\t' is not allowed"),
        ("//a", "empty segment"),
        ("/a//b", "empty segment"),
        ("/a/../b", "'..' is a dot-segment"),
        ("/./a", "'.' is a dot-segment"),
        ("/a?b", "'?' is not allowed"),
        ("/a#b", "'#' is not allowed"),
        ("/a\\b", "'\\\\' is not allowed"),
        ("/a\u00a0b", "'\\xa0' is not allowed"),
        ("api", "start with '/'"),
    ],
)
def test_a_prefix_that_can_never_match_is_refused(prefix: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        mount_prefix(prefix)


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [("/", ""), ("", ""), ("/api/", "/api"), ("/café", "/café"), ("/a:b@c!$&'()*+,;=-._~", None)],
)
def test_a_valid_prefix_is_accepted_and_normalised(prefix: str, normalised: str | None) -> None:
    expected = prefix if normalised is None else normalised
    assert mount_prefix(prefix) == expected


@given(segments, st.sampled_from(["", "/", "/site", "/site/", "/a/b/"]), st.booleans())
def test_spec_form_puts_path_under_root_path_once(
    parts: list[str], root: str, old_style: bool
) -> None:
    path = path_of(parts)
    clean = root.rstrip("/")
    full = path if old_style else clean + path
    scope = {"path": full, "raw_path": full.encode(), "root_path": root}
    once = spec_form(scope)
    assert once["root_path"] == clean
    assert (
        once["path"] == full if (full == clean or full.startswith(clean + "/")) else (clean + full)
    )
    assert once["raw_path"] == once["path"].encode()
    assert spec_form(once) is once  # idempotent: a nested router changes nothing
    assert scope["root_path"] == root  # the incoming scope is never mutated
