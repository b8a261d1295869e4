"""Where a login may send the browser: only paths on this site, whatever the encoding."""

from __future__ import annotations

import pytest

from netlens.webapp.login import MAX_NEXT, safe_next

BYPASSES = [
    "//x",
    "/\\x",
    "/\t/x",
    "https:x",
    "%2F%2Fx",
    "\\/x",
    "/%09/x",
    "/" + "a" * 10_000,
    "//evil.example/x",
    "/\t/evil.example/x",
    "https://evil.example",
    "javascript:x",
    "/%2F/x",
    "/%252F/x",
    "/%5C/x",
    "/%5c%5cevil.example",
    "\\\\evil.example",
    "/\n/x",
    "/\r\n/x",
    " //x",
    "\x00//x",
    "/\u200b/x",
    "x/y",
    "",
    None,
    3,
    "http:/x",
    "//",
    "/%2F%2Fevil.example",
    "/%25252F/x",
    "/\\\t/x",
]


@pytest.mark.parametrize("target", BYPASSES)
def test_targets_naming_another_host_or_no_path_go_home(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize(
    "target",
    ["/", "/runs", "/run/12?tab=loss", "/compare?runs=1,2#x", "/signatures/3", "/a%20b", "/x/y/"],
)
def test_paths_on_this_site_are_kept(target):
    assert safe_next(target) == target


def test_control_characters_are_removed_from_a_kept_path():
    assert safe_next("/ru\tns") == "/runs"
    assert safe_next("/a\\b") == "/a/b"


def test_the_length_cap():
    ok = "/" + "a" * (MAX_NEXT - 1)
    assert safe_next(ok) == ok
    assert safe_next(ok + "a") == "/"
