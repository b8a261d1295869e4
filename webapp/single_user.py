"""Single-user mode's own check: with no login, answer only a browser on this very machine.

Single-user mode (loopback address, NETLENS_AUTH=auto) makes every request the local admin,
so "who may ask" rests on "who can reach 127.0.0.1". Two things break that: DNS rebinding (a
web page whose name now resolves to 127.0.0.1 reads this app from the victim's browser, with
its own name in the Host header) and a reverse proxy on this machine that forwards requests
from elsewhere. So: only Host localhost, 127.0.0.1 or [::1] (any port) or a name listed in
NETLENS_ALLOWED_HOSTS is answered, and a request with proxy headers is refused with how to
set up logins. Configured proxy hops (NETLENS_PROXY_HOPS) turn logins on from the start.
"""

from __future__ import annotations

import flask
from flask import request

from netlens.storage.settings import Settings
from netlens.webapp.auth import is_loopback

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers a proxy adds and a browser talking straight to 127.0.0.1 never sends (every
# X-Forwarded-* too). A proxy that adds none of them (nginx's bare proxy_pass) passes here,
# but then its Host is the upstream's own address: see docs/team-server.md.
PROXY_HEADERS = frozenset(
    {
        "forwarded",
        "x-real-ip",
        "via",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-original-forwarded-for",
    }
)
SETUP_LOGINS = (
    "set up logins: `netlens users add NAME --admin`, then start NetLens with "
    "NETLENS_AUTH=required (and NETLENS_PROXY_HOPS=1 behind one proxy)"
)


def login_reason(settings: Settings, bind_host: str) -> str | None:
    """Why logins are required, or None for single-user mode."""
    if settings.auth == "required":
        return "NETLENS_AUTH=required"
    if not is_loopback(bind_host):
        return f"listening on {bind_host}, not only on the loopback address"
    if settings.proxy_hops > 0:
        return f"NETLENS_PROXY_HOPS={settings.proxy_hops}: requests come through a proxy"
    return None


def install(server: flask.Flask, settings: Settings) -> None:
    """Put the check in front of every route (before the guard). Single-user mode only."""
    allowed = LOOPBACK_NAMES | settings.allowed_host_names

    def netlens_single_user_check():
        return refusal(allowed)

    server.before_request(netlens_single_user_check)


def refusal(allowed: frozenset[str]) -> flask.Response | None:
    """A refusal for a proxied request or a Host not in `allowed`; None to go on."""
    proxied = proxy_headers(request.headers.keys())
    if proxied:
        return _refuse(
            403,
            f"a proxy was detected (header {proxied[0]}): this NetLens runs in "
            "single-user mode, without logins, for a browser on this machine "
            f"only. To serve it through a proxy, {SETUP_LOGINS}.",
        )
    host = request.headers.get("Host", "")
    name = host_name(host)
    if name is None or name not in allowed:
        shown = repr(host[:100]) if host else "(none)"
        return _refuse(
            421,
            f"Host {shown} refused: this NetLens runs in single-user mode, "
            "without logins, and answers only to localhost, 127.0.0.1 and "
            "[::1] (protection against DNS rebinding). Open it as "
            "http://127.0.0.1:PORT/, or add the name to NETLENS_ALLOWED_HOSTS.",
        )
    return None


def proxy_headers(names) -> list[str]:
    """The proxy headers among these header names, as sent."""
    return [
        name
        for name in names
        if name.lower() in PROXY_HEADERS or name.lower().startswith("x-forwarded-")
    ]


def host_name(header: str) -> str | None:
    """The name in a Host header ("[::1]:8050" -> "::1"), lower case; None when the value is
    not a plain `name[:port]`."""
    text = header.lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[1:end], text[end + 1 :]
    else:
        name, colon, port = text.partition(":")
        rest = colon + port
    if rest and not (
        rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit() and len(rest) <= 6
    ):
        return None
    return name or None


def _refuse(status: int, message: str) -> flask.Response:
    if request.path.startswith(("/api/", "/_dash-")):
        response = flask.jsonify(error=message)
    else:  # a person at a browser: plain words (nosniff is set on every response)
        response = flask.make_response(message + "\n")
        response.mimetype = "text/plain"
    response.status_code = status
    return response
