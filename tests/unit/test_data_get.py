"""`netlens data get` / `data list` against a local HTTP server serving tiny IDX files.

Nothing leaves the machine: the server is an http.server in a thread on 127.0.0.1, and the
fixture files are made here (their sha256 reach the command through --manifest, the one way
to check against sums other than the pinned ones).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from click.testing import CliRunner

from netlens.cli import main
from netlens.datafetch import GZ_FILES, REMOTES
from netlens.storage.presets import get_preset
from netlens.worker.datasets.mnist import load_mnist


def _idx(array: np.ndarray) -> bytes:
    type_byte = {np.dtype("uint8"): 0x08}[array.dtype]
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return bytes([0, 0, type_byte, array.ndim]) + dims + array.astype(">u1").tobytes()


def _fixture_files() -> dict[str, bytes]:
    """Four gzipped IDX files: 12 train and 8 test images of 28x28 (random, so gzip cannot
    shrink them much and a cut after a few hundred bytes lands mid-file)."""
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, (8, 28, 28), dtype=np.uint8)
    y_tr = np.array([1, 7] * 6, dtype=np.uint8)
    y_te = np.array([1, 7, 3, 4] * 2, dtype=np.uint8)
    parts = [x_tr, y_tr, x_te, y_te]
    return {name: gzip.compress(_idx(a), mtime=0) for name, a in zip(GZ_FILES, parts, strict=True)}


class _Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    drop_after: dict[str, int]  # file -> bytes sent before the connection drops (once)
    honour_range: bool
    ranges: list[tuple[str, str | None]]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        name = self.path.lstrip("/").split("/")[-1]
        asked = self.headers.get("Range")
        server.ranges.append((name, asked))
        body = server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if asked and server.honour_range:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = server.drop_after.pop(name, None)
        if cut is not None:
            self.wfile.write(body[start : start + cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture()
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.drop_after, srv.honour_range, srv.ranges = _fixture_files(), {}, True, []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/mnist/"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def manifest(tmp_path, server):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({n: hashlib.sha256(b).hexdigest() for n, b in server.files.items()}))
    return path


def _cli(tmp_path, *args: str):
    env = {
        "NETLENS_HOME": str(tmp_path / "home"),
        "NETLENS_DATA_DIR": str(tmp_path / "data"),
        "NETLENS_DATABASE_URL": None,  # the SQLite file in NETLENS_HOME
        "NETLENS_BROKER_URL": None,  # the filesystem broker: workers on this machine
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_full_download_lands_where_the_reader_looks(tmp_path, server, manifest):
    result = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "data" / "mnist"
    for name, body in server.files.items():
        assert (folder / name).read_bytes() == body
    assert not list(folder.glob("*.part"))
    assert "not NetLens's" in result.output  # a manifest is never used silently
    source = load_mnist("mnist", None, tmp_path / "data")  # where runs read MNIST from
    assert source.x.shape == (12, 784) and sorted(set(source.y_test.tolist())) == [1, 3, 4, 7]
    again = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    assert again.exit_code == 0 and again.output.count("already there") == 4
    assert len(server.ranges) == 4  # nothing fetched the second time


@pytest.mark.parametrize("honour_range", [True, False])
def test_broken_download_resumes(tmp_path, server, manifest, honour_range):
    victim = "train-images-idx3-ubyte.gz"
    server.drop_after[victim] = 700
    server.honour_range = honour_range
    first = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    assert first.exit_code == 1
    assert "stopped after" in first.output and "run the same command again" in first.output
    folder = tmp_path / "data" / "mnist"
    part = folder / f"{victim}.part"
    assert part.read_bytes() == server.files[victim][:700]
    assert not (folder / victim).exists()
    second = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    assert second.exit_code == 0, second.output
    assert (folder / victim).read_bytes() == server.files[victim]
    assert not part.exists()
    assert (victim, "bytes=700-") in server.ranges
    expected = "resuming after 700 bytes" if honour_range else "does not resume"
    assert expected in second.output


def test_hash_mismatch_is_refused_and_nothing_left(tmp_path, server, manifest):
    victim = "t10k-labels-idx1-ubyte.gz"
    body = bytearray(server.files[victim])
    body[-1] ^= 0xFF
    server.files[victim] = bytes(body)
    result = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    assert result.exit_code == 1
    assert f"{victim}: sha256 mismatch" in result.output and "deleted" in result.output
    folder = tmp_path / "data" / "mnist"
    assert not (folder / victim).exists() and not (folder / f"{victim}.part").exists()


def test_pinned_sums_apply_to_a_mirror_without_a_manifest(tmp_path, server):
    """--source alone cannot make NetLens accept other bytes than the published files."""
    result = _cli(tmp_path, "data", "get", "mnist", "--source", server.url)
    assert result.exit_code == 1
    assert REMOTES["mnist"].sha256[GZ_FILES[0]] in result.output
    assert not [p for p in (tmp_path / "data" / "mnist").iterdir()]


def test_offline_says_what_to_do_by_hand(tmp_path):
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _cli(tmp_path, "data", "get", "fashion-mnist", "--source", f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    folder = tmp_path / "data" / "fashion-mnist"
    assert "could not reach" in result.output and f"{folder}/" in result.output
    for name in GZ_FILES:
        assert f"http://127.0.0.1:{port}/{name}" in result.output
        assert f"{REMOTES['fashion-mnist'].sha256[name]}  {name}" in result.output


def test_bad_manifest_is_refused(tmp_path, server):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({GZ_FILES[0]: "0" * 64}))
    result = _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", path)
    assert result.exit_code == 1 and "exactly the keys" in result.output
    assert server.ranges == []


def test_data_list_and_the_preset_fail_early(tmp_path, server, manifest):
    listed = _cli(tmp_path, "data", "list")
    lines = listed.output.splitlines()
    assert lines[0] == f"data folder: {tmp_path / 'data'}"
    assert "mnist          missing" in listed.output and "netlens data get mnist" in listed.output
    trained = _cli(tmp_path, "train", "--preset", "mnist-1-7", "--quiet")
    assert trained.exit_code == 2
    assert "netlens data get mnist" in trained.output and str(tmp_path / "data" / "mnist") in (
        trained.output
    )
    assert not (tmp_path / "home" / "netlens.db").exists()  # failed before opening the db
    submitted = _cli(tmp_path, "submit", "--preset", "mnist-1-7")
    assert submitted.exit_code == 2 and "netlens data get mnist" in submitted.output
    assert not (tmp_path / "home" / "netlens.db").exists()  # nothing queued
    _cli(tmp_path, "data", "get", "mnist", "--source", server.url, "--manifest", manifest)
    listed = _cli(tmp_path, "data", "list")
    assert "mnist          present" in listed.output
    assert "fashion-mnist  missing" in listed.output


def test_datafetch_does_not_import_jax():
    code = "import sys, netlens.datafetch; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mnist_1_7_preset():
    spec = get_preset("mnist-1-7")
    assert spec.dataset.name == "mnist"
    assert spec.dataset.classes == [1, 7] and spec.dataset.ood_classes == [3, 4]
