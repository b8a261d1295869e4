"""The web process's shared objects (settings, database, cached reads), reached from callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field

import flask

from netlens.storage.db import Database
from netlens.storage.identity_cache import IdentityCache
from netlens.storage.settings import Settings
from netlens.webapp.data import RunData


@dataclass
class WebContext:
    settings: Settings
    db: Database
    data: RunData
    auth_required: bool = True  # False only in single-user mode (loopback, NETLENS_AUTH=auto)
    identities: IdentityCache = field(init=False)  # sessions and tokens, for a few seconds

    def __post_init__(self):
        self.identities = IdentityCache(self.settings.identity_cache_seconds)


def install(server: flask.Flask, context: WebContext) -> None:
    server.config["NETLENS"] = context


def current() -> WebContext:
    return flask.current_app.config["NETLENS"]
