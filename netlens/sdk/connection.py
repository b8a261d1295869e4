"""Which NetLens the Python API talks to: the local database (the default) or a team server.

    nl.connect("http://lab:8050", token="...")   # or NETLENS_SERVER and NETLENS_TOKEN
    nl.disconnect()                               # back to the local database

While connected, `fit` and `nl.Recorder` stream their epochs to the server through its REST
API (docs/api.md) under the token's user, and `nl.runs`/`nl.get`/`nl.submit` read from and
submit to it. Training always happens in this process. The HTTP client is netlens.remote's
(the CLI's `--server`), so errors read the same in both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from netlens.remote import TOKEN_ENV, Client, RemoteError
from netlens.remote import connect as _client_for

SERVER_ENV = "NETLENS_SERVER"


@dataclass
class Connection:
    """A team server reached with one token."""

    url: str
    client: Client = field(repr=False)

    def __repr__(self) -> str:  # the token is never shown
        return f"<netlens connection to {self.url}>"


_current: Connection | None = None


def connect(url: str | None = None, token: str | None = None) -> Connection:
    """Talk to the NetLens server at `url` (default $NETLENS_SERVER) with `token` (default
    $NETLENS_TOKEN; create one with `netlens tokens create USER` on the server). The token is
    checked now: a refused token raises RemoteError here, not in the middle of a fit."""
    global _current
    url = url if url is not None else os.environ.get(SERVER_ENV, "")
    if not url:
        raise ValueError(f"url: give the server's address, or set {SERVER_ENV}")
    try:
        client = _client_for(url, token)
        client.check_token()
    except RemoteError as exc:  # the CLI's wording names --server/--token
        raise RemoteError(_sdk_words(str(exc)), exc.exit_code, exc.errors) from None
    _current = Connection(client.base_url, client)
    return _current


def disconnect() -> None:
    """Back to the local database (NETLENS_SERVER, if set, is ignored until connect())."""
    global _current, _env_ignored
    _current, _env_ignored = None, True


_env_ignored = False


def current() -> Connection | None:
    """The connection in use: the last connect(), else one made from $NETLENS_SERVER (and
    $NETLENS_TOKEN) on first use, else None (the local database)."""
    global _current
    if _current is None and not _env_ignored and os.environ.get(SERVER_ENV):
        connect()
    return _current


def _sdk_words(message: str) -> str:
    return (
        message.replace("--server:", "url:")
        .replace("--token:", "token:")
        .replace("--server", f"url (or {SERVER_ENV})")
        .replace("--token", f"token (or {TOKEN_ENV})")
    )
