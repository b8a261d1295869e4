"""A live team server for the black-box security suite: `netlens serve --workers 0` in a
subprocess with logins required, on a fresh PostgreSQL database and its own Redis database,
with real accounts (alice and bob are members, root is an admin). Tests talk to it over HTTP
only, as an attacker would, and compare the database before and after (`Team.snapshot`)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import MetaData, select, update

from netlens.storage import users
from netlens.storage.db import Database
from netlens.storage.models import Run
from tests.conftest import flushed_redis_url, fresh_pg_database
from tests.live_server import live_server, team_env

REDIS_DB = 9  # a database of its own on the shared Redis (queue 11, admin 13, API 14)
PASSWORD = "a long enough password"
# tables whose rows legitimately change on a refused request (bookkeeping of who asked)
VOLATILE = {
    "web_sessions": ("last_seen_at",),
    "api_tokens": ("last_used_at",),
    "login_throttles": None,
    "workers": None,
}


IDENTITY_CACHE_SECONDS = 2.0  # the server's NETLENS_IDENTITY_CACHE_SECONDS (its default)


class Team:
    def __init__(self, db: Database, url: str, env: dict, home: Path):
        self.db, self.url, self.env, self.home = db, url, env, home
        self.people = {
            name: users.create_user(db, name, PASSWORD, is_admin=(name == "root"))
            for name in ("alice", "bob", "root")
        }
        self.tokens = {
            name: users.create_token(db, u.id, "security tests")[1]
            for name, u in self.people.items()
        }

    def wait_for_other_process_change(self) -> None:
        """A logout, reset, disabling or expiry made outside the server's process (here: the
        test's, as the CLI would) reaches it when its identity cache lets go: within
        NETLENS_IDENTITY_CACHE_SECONDS (storage/identity_cache.py), which the tests hold it to."""
        time.sleep(IDENTITY_CACHE_SECONDS + 0.1)

    # ---- clients ----------------------------------------------------------------------------
    def api(self, who: str | None, method: str, path: str, **kwargs) -> requests.Response:
        """An API call with `who`'s token (None: no token)."""
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        kwargs.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def browser(self, who: str | None = None) -> requests.Session:
        """A requests session that behaves like a same-origin browser tab, logged in as `who`
        (None: an outsider with no session)."""
        session = requests.Session()
        session.headers["Origin"] = self.url
        if who is not None:
            response = self.login(session, who, PASSWORD)
            assert response.status_code == 302, response.text
        return session

    def login(
        self, session: requests.Session, name: str, password: str, next_: str = "/", **kwargs
    ) -> requests.Response:
        form = session.get(self.url + "/login", params={"next": next_}, timeout=30)
        match = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert match, form.text[:500]
        return session.post(
            self.url + "/login",
            data={"name": name, "password": password, "csrf": match.group(1), "next": next_},
            allow_redirects=False,
            timeout=60,
            **kwargs,
        )

    def callback(self, session: requests.Session, body: dict) -> requests.Response:
        return session.post(
            self.url + "/_dash-update-component", json=body, timeout=60, allow_redirects=False
        )

    # ---- the database, for "nothing changed" ---------------------------------------------------
    def snapshot(self) -> dict:
        """Every row of every table (volatile bookkeeping columns left out)."""
        meta = MetaData()
        meta.reflect(self.db.engine)
        state = {}
        with self.db.engine.connect() as conn:
            for table in meta.sorted_tables:
                skip = VOLATILE.get(table.name, ())
                if skip is None:
                    continue
                columns = [c for c in table.columns if c.name not in skip]
                rows = conn.execute(select(*columns)).all()
                state[table.name] = sorted(map(repr, rows))
        return state


@pytest.fixture(scope="session")
def team_db(pg_server):
    with fresh_pg_database(pg_server) as db:
        yield db


@pytest.fixture(scope="session")
def team(team_db, tmp_path_factory):
    home = tmp_path_factory.mktemp("security-server")
    env = team_env(
        home,
        team_db.url,
        flushed_redis_url(REDIS_DB),
        NETLENS_IDENTITY_CACHE_SECONDS=str(IDENTITY_CACHE_SECONDS),
    )
    with live_server(env, home) as url:
        yield Team(team_db, url, env, home)


@pytest.fixture(scope="session")
def trained_run(team) -> int:
    """A run of alice's with recorded epochs, trained by `netlens train` in its own process."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "train",
            "--preset",
            "xor",
            "--epochs",
            "3",
            "--quiet",
        ],
        env=team.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    run_id = int(result.stdout.split()[-1])
    with team.db.engine.begin() as conn:  # the fixture's own setup: give the run to alice
        conn.execute(update(Run).where(Run.id == run_id).values(owner_id=team.people["alice"].id))
    return run_id
