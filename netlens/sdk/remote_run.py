"""Runs on a team server, read through its REST API (docs/api.md) while `nl.connect` is in use.

RemoteRun has the public surface of the local Run (netlens.sdk.reading.RunBase holds it, with
its argument checks and messages); only the few reads underneath go over HTTP:

- the summary, metrics and tensor catalog: GET /runs/{id}, /metrics, /tensors, each sent
  with the ETag of the last answer (If-None-Match), so an unchanged one costs a 304;
- a tensor: GET /runs/{id}/tensors/{name}?start=&stop=&format=npy, the epochs asked only,
  as a structured .npy (epoch, value) read without pickle;
- the fixed arrays (probe inputs, labels, grid): GET /runs/{id}/arrays, one .npz, read
  once and kept: they never change once a run has started;
- analyses: POST /runs/{id}/analyses, then GET until the server's workers stored them.

Server refusals become RemoteError (netlens.remote) with the server's message; a missing run
is also a LookupError, a refused argument (400, 409, 422) also a ValueError, as locally.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import requests

from netlens.remote import RemoteError, run_info
from netlens.sdk.connection import Connection, _sdk_words
from netlens.sdk.reading import Analyses, RunBase, _check_epoch_argument
from netlens.storage.runs import RunInfo

API = "/api/v1"
PAGE = 500  # the API's largest page of runs
MAX_EPOCH = 2**31 - 1  # the tensor route's start and stop
ANALYSIS_TIMEOUT_S, POLL_S = 600.0, 1.0


class RemoteLookupError(RemoteError, LookupError):
    """The server has no such run (404)."""


class RemoteValueError(RemoteError, ValueError):
    """The server refused an argument (400, 409, 422): the message names it."""


def call(connection: Connection, method: str, path: str, **kwargs) -> requests.Response:
    """One API request (path under /api/v1); errors in the Python API's words."""
    try:
        return connection.client._request(method, API + path, **kwargs)
    except RemoteError as exc:
        message = _sdk_words(str(exc))
        code = _status_of(message)
        kind = (
            RemoteLookupError
            if code == 404
            else RemoteValueError
            if code in (400, 409, 422)
            else RemoteError
        )
        raise kind(message, exc.exit_code, exc.errors) from None


def _status_of(message: str) -> int | None:
    """The HTTP status netlens.remote put in its message: '... (404)'."""
    for code in (400, 404, 409, 422):
        if f"({code})" in message:
            return code
    return None


def list_remote_runs(
    connection: Connection,
    status: str | None,
    tag: str | None,
    dataset: str | None,
    name: str | None,
    limit: int,
) -> list[RunInfo]:
    """The `limit` newest runs matching the filters, a page of up to 500 at a time."""
    found: list[RunInfo] = []
    while len(found) < limit:
        page = min(PAGE, limit - len(found))
        params = {"limit": page, "offset": len(found), "status": status, "tag": tag}
        params |= {"dataset": dataset, "name": name}
        data = call(
            connection,
            "GET",
            "/runs",
            params={k: v for k, v in params.items() if v is not None},
        ).json()
        found += [run_info(item) for item in data["runs"]]
        if len(data["runs"]) < page or not data.get("next"):
            break
    return found


class RemoteRun(RunBase):
    """A run on the team server of `connection` (nl.get while connected). Read like a local
    Run; the summary is fetched on each access (a live run moves), tensors on demand."""

    def __init__(self, run_id: int, connection: Connection):
        self.id = run_id
        self.connection = connection
        self._cached: dict[str, tuple[str, Any]] = {}  # path -> (ETag, decoded answer)
        self._fixed: dict[str, np.ndarray] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRun) and (other.id, other.connection.url) == (
            self.id,
            self.connection.url,
        )

    def __hash__(self) -> int:
        return hash((self.id, self.connection.url))

    # -- reads ------------------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        """GET a JSON answer under this run, conditional on the last one's ETag."""
        path = f"/runs/{self.id}{path}"
        etag, cached = self._cached.get(path, (None, None))
        headers = {"If-None-Match": etag} if etag else {}
        response = call(self.connection, "GET", path, headers=headers)
        if response.status_code == 304 and etag:
            return cached
        data = response.json()
        if response.headers.get("ETag"):
            self._cached[path] = (response.headers["ETag"], data)
        return data

    @property
    def info(self) -> RunInfo:
        """Everything the server's runs table holds about it (storage.runs.RunInfo; owner
        and page in `extra`), read now."""
        return run_info(self._get(""))

    @property
    def url(self) -> str:
        """The run's page on the server."""
        return f"{self.connection.url}/runs/{self.id}"

    @property
    def epochs(self) -> np.ndarray:
        return np.asarray(self._get("/metrics")["epochs"], np.int64)

    def _metric_arrays(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        data = self._get("/metrics")
        metrics = {
            name: np.array([math.nan if v is None else v for v in values], np.float64)
            for name, values in data["metrics"].items()
        }
        return np.asarray(data["epochs"], np.int64), metrics

    def _catalog(self) -> dict[str, dict[str, Any]]:
        return {t["name"]: t for t in self._get("/tensors")["tensors"]}

    @property
    def tensor_names(self) -> list[str]:
        return list(self._catalog())

    def _tensor_epochs(self, name: str) -> np.ndarray:
        entry = self._catalog().get(name)
        return np.asarray(entry["epochs"] if entry else [], np.int64)

    def _read_tensor(self, name, first, last):
        entry = self._catalog()[name]
        start = 0 if first is None else max(0, int(first))
        stop = MAX_EPOCH if last is None else min(MAX_EPOCH, int(last))
        if stop < start:  # nothing asked (the route's start and stop are 0 to 2^31-1)
            empty = np.zeros((0, *entry["shape"]), np.dtype(entry["dtype"]))
            return np.zeros(0, np.int64), empty
        response = call(
            self.connection,
            "GET",
            f"/runs/{self.id}/tensors/{quote(name, safe='/')}",
            params={"start": start, "stop": stop, "format": "npy"},
        )
        rows = np.load(io.BytesIO(response.content), allow_pickle=False)
        values = rows["value"].astype(rows.dtype["value"].base.newbyteorder("="))
        return rows["epoch"].astype(np.int64), np.ascontiguousarray(values)

    def arrays(self) -> dict[str, np.ndarray]:
        """The run's fixed arrays: probe/x, probe/y, probe/is_ood, classes, grid/x (GET
        /runs/{id}/arrays, one .npz; kept once the run has them: they never change)."""
        if self._fixed is None:
            from netlens.storage.wire import unpack_arrays

            body = call(self.connection, "GET", f"/runs/{self.id}/arrays").content
            fixed = unpack_arrays(body, 2**40)  # our own server's answer: no size cap
            if not fixed:  # a run that has not started yet: ask again next time
                return fixed
            self._fixed = fixed
        return dict(self._fixed)

    def export(self, path: str | Path, compress: bool = False) -> Path:
        """Download the run's .npz (docs/export-format.md) to `path`; returns its path."""
        try:
            return self.connection.client.export(self.id, path, compress)
        except RemoteError as exc:
            message = _sdk_words(str(exc))
            kind = RemoteLookupError if _status_of(message) == 404 else RemoteError
            raise kind(message, exc.exit_code, exc.errors) from None

    # -- analyses ---------------------------------------------------------------------------
    def analyze(
        self,
        epoch: int | None = None,
        *,
        timeout: float = ANALYSIS_TIMEOUT_S,
        poll: float = POLL_S,
        methods: Any = (),
    ) -> Analyses:
        """The signature analyses of `epoch` (default: the last recorded), as the server's
        signatures page shows them, with the t-SNE / UMAP projections named in `methods`:
        read when stored, else requested (POST) and waited for up to `timeout` seconds
        while the server's workers compute them."""
        from netlens.dispatch.analysis_requests import projection_methods, with_projections

        _check_epoch_argument(epoch)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ValueError(f"timeout: {timeout!r} must be a number of seconds, 0 or more")
        asked = projection_methods(list(methods) if isinstance(methods, tuple) else methods)
        body = {} if epoch is None else {"epoch": int(epoch)}
        if asked:
            body["methods"] = asked
        answer = call(self.connection, "POST", f"/runs/{self.id}/analyses", json=body).json()
        epoch = int(answer["epoch"])
        wanted = {(a["kind"], a["epoch"]) for a in answer["analyses"]}
        wanted |= {(q["kind"], q["epoch"]) for q in answer["queued"]}
        deadline = time.monotonic() + timeout
        found = {(a["kind"], a["epoch"]): a for a in answer["analyses"]}
        while True:
            for key in wanted:
                a = found.get(key)
                if a is not None and a["state"] == "failed":
                    raise RemoteError(
                        f"analyze: the server's {a['kind']} analysis of run {self.id} at "
                        f"epoch {a['epoch']} failed: {a['error']}"
                    )
            if all(key in found and found[key]["state"] == "done" for key in wanted):
                break
            if time.monotonic() >= deadline:
                states = {key: found[key]["state"] if key in found else "queued" for key in wanted}
                waiting = sorted(
                    f"{kind} at epoch {at} ({state})"
                    for (kind, at), state in states.items()
                    if state != "done"
                )
                raise RemoteError(
                    f"analyze: the server has not finished the analyses of run {self.id} "
                    f"within {timeout:g} s: {', '.join(waiting)}. They stay queued for its "
                    "workers (a server started with --workers 0 has none); call "
                    "run.analyze() again later, or with a larger timeout"
                )
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
            listed = self._get_fresh(f"/runs/{self.id}/analyses")["analyses"]
            found = {(a["kind"], a["epoch"]): a for a in listed}
        summaries = {kind: found[(kind, at)]["summary"] for kind, at in wanted}
        summary = with_projections(summaries["epoch"], {m: summaries[m] for m in asked})
        return Analyses(self.id, epoch, summary, summaries.get("timeline"))

    def _get_fresh(self, path: str) -> Any:
        return call(self.connection, "GET", path).json()
