"""Issue 15 part 5: `fit` and nl.Recorder stream their epochs to a team server (nl.connect, the
REST sink of netlens/sdk/sink.py) against a real `netlens serve` on PostgreSQL and Redis: the
run is the token's user's and holds what a local fit of the same spec holds; a connection cut
mid-run (a TCP proxy in this process) loses and doubles no epoch; refused tokens, disabled
users, another member, over-limit bodies and spec runs are refused with clear errors."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

import netlens as nl
from netlens.remote import RemoteError
from netlens.sdk import connection
from netlens.sdk.sink import LocalSink, RestSink
from netlens.storage import records, runs, users
from netlens.storage.records import EpochChunk
from netlens.storage.wire import pack_chunk
from tests.conftest import flushed_redis_url, fresh_pg_database
from tests.integration import test_api
from tests.integration.test_client_run_meta import crafted_flax_run
from tests.live_server import live_server, team_env

REDIS_DB = 6
CHUNK_MB = 1  # the server's chunk limit here, so that "over it" is cheap to send
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
Y = np.array([0, 1, 1, 0])


@pytest.fixture(scope="module")
def site(pg_server, tmp_path_factory):
    home = tmp_path_factory.mktemp("sdk-server")
    with fresh_pg_database(pg_server) as db:
        env = team_env(
            home, db.url, flushed_redis_url(REDIS_DB), NETLENS_MAX_CHUNK_MB=str(CHUNK_MB)
        )
        with live_server(env, home) as url:
            yield test_api.Site(db, url, env, home)


@pytest.fixture(autouse=True)
def disconnected():
    yield
    connection.disconnect()


def xor_model():
    model = nl.Sequential(
        [nl.layers.Dense(3, activation="tanh"), nl.layers.Dense(1, activation="sigmoid")],
        input_shape=(2,),
    )
    model.compile(optimizer=nl.optimizers.Adam(learning_rate=0.05), loss="binary_crossentropy")
    return model


def test_a_fit_streams_to_the_server_as_the_members_run_and_records_what_a_local_fit_does(
    site, sqlite_db, monkeypatch
):
    nl.connect(site.url, token=site.tokens["alice"])
    remote = xor_model().fit(X, Y, epochs=12, batch_size=4, seed=3, verbose=0).run
    info = runs.get_run(site.db, remote.id)
    assert info.owner_id == site.people["alice"].id and info.status == "succeeded"
    assert remote.url == f"{site.url}/runs/{remote.id}"
    connection.disconnect()
    monkeypatch.setattr("netlens.sdk.sink.default_sink", lambda: LocalSink(sqlite_db))
    local = xor_model().fit(X, Y, epochs=12, batch_size=4, seed=3, verbose=0).run
    names = records.tensor_names(site.db, remote.id)
    assert names == records.tensor_names(sqlite_db, local.id) and len(names) >= 4
    epochs = runs.recorded_epoch_numbers(site.db, remote.id)
    assert epochs == runs.recorded_epoch_numbers(sqlite_db, local.id) == list(range(13))
    for name in names:
        at_server, at_home = (
            records.read_tensor(db, r.id, name) for db, r in ((site.db, remote), (sqlite_db, local))
        )
        assert np.array_equal(at_server[0], at_home[0]), name
        np.testing.assert_allclose(at_server[1], at_home[1], rtol=1e-6, err_msg=name)
    metrics = site.call("bob", "GET", f"/api/v1/runs/{remote.id}/metrics")  # any member reads
    assert metrics.status_code == 200 and metrics.json()["epochs"] == epochs
    assert site.call("bob", "GET", f"/api/v1/runs/{remote.id}/export").status_code == 200


class Proxy:
    """A TCP proxy in front of the server that can cut connections: after `after` more bytes
    in one direction it closes both ends, then refuses new connections for `pause` s."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.cut_at: dict[str, int] = {}  # direction -> bytes left before the cut
        self.refuse_until = 0.0
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, direction: str, after: int, pause: float) -> None:
        with self.lock:
            self.cut_at[direction], self.pause = after, pause

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if time.monotonic() < self.refuse_until:
                client.close()
                continue
            server = socket.create_connection(self.target)
            for a, b, d in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pipe, args=(a, b, d, client, server), daemon=True
                ).start()

    def _pipe(self, src, dst, direction, *both) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    left = self.cut_at.get(direction)
                    if left is not None and len(data) > left:
                        del self.cut_at[direction]
                        dst.sendall(data[:left])
                        self.cuts += 1
                        self.refuse_until = time.monotonic() + self.pause
                        for s in both:  # shutdown wakes the other direction's recv
                            s.shutdown(socket.SHUT_RDWR)
                        return
                    if left is not None:
                        self.cut_at[direction] = left - len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in both:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def tiny_nnx():
    from flax import nnx

    class Tiny(nnx.Module):
        def __init__(self, rngs):
            self.hidden = nnx.Linear(2, 3, rngs=rngs)
            self.out = nnx.Linear(3, 1, rngs=rngs)

        def __call__(self, x):
            return self.out(nnx.relu(self.hidden(x)))

    return Tiny(nnx.Rngs(0))


def test_a_recorder_streams_through_cut_connections_with_every_epoch_once_and_resumes(site):
    proxy = Proxy(int(site.url.rsplit(":", 1)[1]))
    conn = nl.connect(f"http://127.0.0.1:{proxy.port}", token=site.tokens["alice"])
    model = tiny_nnx()
    recorder = nl.Recorder(model, probe=X, probe_labels=Y, name="cut", sink=RestSink(conn))
    with recorder:
        for epoch in range(1, 41):
            if epoch == 10:  # a request cut mid-body: the server stores nothing of it
                proxy.cut("up", 300, 1.0)
            if epoch == 25:  # an answer cut: the server stored it, the client sends it again
                proxy.cut("down", 10, 0.5)
            recorder.log(epoch, loss=1.0 / epoch)
            time.sleep(0.02)
    assert proxy.cuts == 2
    run_id = recorder.run_id
    info = runs.get_run(site.db, run_id)
    assert info.owner_id == site.people["alice"].id and info.status == "succeeded"
    assert runs.recorded_epoch_numbers(site.db, run_id) == list(range(1, 41))
    assert info.epochs_recorded == 40 and info.last_epoch == 40
    for name in records.tensor_names(site.db, run_id):
        epochs, values = records.read_tensor(site.db, run_id, name)
        assert epochs.tolist() == list(range(1, 41)) and len(values) == 40, name
    # resume against the server: the stored probe checked, epochs 41.. appended
    again = nl.Recorder(model, probe=X, probe_labels=Y, resume=run_id, sink=RestSink(conn))
    assert again.last_epoch == 40 and again.restore()[0] is not None
    with again:
        assert again.log(40, loss=0.1) is False
        for epoch in (41, 42):
            assert again.log(epoch, loss=0.1) is True
    assert runs.recorded_epoch_numbers(site.db, run_id) == list(range(1, 43))
    assert runs.get_run(site.db, run_id).status == "succeeded"


def chunk_body(epochs, values=None) -> bytes:
    values = np.zeros((len(epochs), 3), np.float32) if values is None else values
    return pack_chunk(EpochChunk(list(epochs), [{"loss": 0.5}] * len(epochs), {"w": values}, {}))


def test_writes_are_the_owners_idempotent_checked_and_within_the_limits(site):
    conn = nl.connect(site.url, token=site.tokens["alice"])
    recorder = nl.Recorder(tiny_nnx(), probe=X, name="owned", sink=RestSink(conn))
    run_id = recorder.run_id
    path = f"/api/v1/runs/{run_id}/epochs"
    octet = {"Content-Type": "application/octet-stream"}
    first = site.call("alice", "POST", path, data=chunk_body([1, 2]), headers=dict(octet))
    assert first.status_code == 200 and first.json()["written"] == 2, first.text
    again = site.call("alice", "POST", path, data=chunk_body([1, 2]), headers=dict(octet))
    assert again.status_code == 200 and again.json()["written"] == 0
    assert runs.recorded_epoch_numbers(site.db, run_id) == [1, 2]
    before = runs.get_run(site.db, run_id)
    for who, method, url, kwargs in (
        ("bob", "POST", path, {"data": chunk_body([3]), "headers": dict(octet)}),
        ("bob", "POST", f"/api/v1/runs/{run_id}/finish", {"json": {"status": "failed"}}),
        ("bob", "GET", f"/api/v1/runs/{run_id}/checkpoint", {}),
    ):
        response = site.call(who, method, url, **kwargs)
        assert response.status_code == 403, response.text
        assert "belongs to another user" in response.json()["error"]
    bad = (
        (chunk_body([3], np.zeros((1, 4), np.float32)), 422, "tensors/w"),  # another shape
        (chunk_body([3], np.zeros((1, 3), np.float64)), 422, "tensors/w"),  # another dtype
        (b"not an npz at all", 422, "body"),
        (np.zeros(CHUNK_MB * 2**20 // 4 + 1, np.float32).tobytes(), 413, "NETLENS_MAX_CHUNK_MB"),
    )
    for body, status, named in bad:
        response = site.call("alice", "POST", path, data=body, headers=dict(octet))
        assert response.status_code == status and named in response.text, response.text
    after = runs.get_run(site.db, run_id)
    assert (after.epochs_recorded, after.recorded_bytes) == (
        before.epochs_recorded,
        before.recorded_bytes,
    )
    recorder.close()
    late = site.call("alice", "POST", path, data=chunk_body([9]), headers=dict(octet))
    assert late.status_code == 409 and "not running" in late.json()["error"]
    meta = crafted_flax_run()[0]  # a valid meta but for its spec: a spec run is the queue's
    spec_run = {**meta, "spec": {"dataset": {"name": "xor"}, "training": {"epochs": 3}}}
    response = site.call(
        "alice",
        "POST",
        "/api/v1/client-runs",
        files={"meta": (None, __import__("json").dumps(spec_run)), "arrays": ("a.npz", b"")},
    )
    assert response.status_code == 422 and "model.kind" in response.text, response.text


def test_connect_refuses_a_bad_token_and_a_disabled_users_token(site):
    with pytest.raises(RemoteError, match="refused the token"):
        nl.connect(site.url, token="nl_not-a-token")
    user = users.create_user(site.db, "dave", test_api.PASSWORD)
    _, token = users.create_token(site.db, user.id, "laptop")
    nl.connect(site.url, token=token)
    users.set_disabled(site.db, "dave")
    time.sleep(2.5)  # the server's identity cache (NETLENS_IDENTITY_CACHE_SECONDS, 2 s)
    with pytest.raises(RemoteError, match="refused the token"):
        nl.connect(site.url, token=token)
