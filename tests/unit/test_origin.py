"""The same-origin rule for state-changing requests: every origin header a request carries
must name this site, and a request that carries none passes only when it may (no cookie)."""

from __future__ import annotations

import flask
import pytest

from netlens.webapp.auth import same_origin

app = flask.Flask(__name__)
SITE = "http://lab.example:8050"


def check(headers: dict, missing_ok: bool = False) -> bool:
    with app.test_request_context("/x", method="POST", base_url=SITE, headers=headers):
        return same_origin(missing_ok)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Origin": SITE}, True),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "none"}, True),  # typed in the address bar
        ({"Sec-Fetch-Site": "same-site"}, False),  # a sibling host of the lab
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Referer": SITE + "/runs/3"}, True),
        ({"Referer": "http://evil.example/lab.example:8050"}, False),
        ({"Origin": SITE, "Sec-Fetch-Site": "cross-site"}, False),  # all must agree
        ({"Origin": SITE, "Referer": "http://evil.example/"}, False),
        ({"Origin": SITE, "Sec-Fetch-Site": "same-origin", "Referer": SITE + "/"}, True),
    ],
)
def test_each_header_sent_must_name_this_site(headers, expected):
    assert check(headers) is expected


def test_a_request_with_no_origin_header_passes_only_when_allowed():
    assert check({}) is False  # with a session cookie: refused
    assert check({}, missing_ok=True) is True  # no cookie (or the login form's own token)
