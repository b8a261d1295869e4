"""The CLI's client for a NetLens server (`--server URL`): the REST API of docs/api.md.

The token comes from `--token` or the NETLENS_TOKEN environment variable (better: a command
line is visible to other users of the machine) and is never printed. Every failure is a
RemoteError whose message says what to do and whose `exit_code` follows netlens/cli.py:
2 for bad input (a refused spec or parameter, an unknown run, a missing token or a malformed
URL), 1 otherwise (refused or revoked token, not allowed, server unreachable or failing).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from netlens.storage.runs import RunInfo
from netlens.storage.spec import ExperimentSpec

TOKEN_ENV = "NETLENS_TOKEN"
EXIT_BAD_INPUT, EXIT_OTHER = 2, 1
PAGE_LIMIT = 500  # the API's largest page
CONNECT_TIMEOUT_S, READ_TIMEOUT_S, EXPORT_READ_TIMEOUT_S = 10, 120, 900


class RemoteError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_OTHER, errors: list[str] | None = None):
        super().__init__(message)
        self.exit_code, self.errors = exit_code, errors or []


def _loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(server: str, token: str | None) -> Client:
    """A client for `server` (http:// or https://), authenticated with `token` or
    $NETLENS_TOKEN."""
    parts = urlsplit(server or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(
            f"--server: {server!r} is not a URL like https://netlens.example.org "
            "or http://127.0.0.1:8050",
            EXIT_BAD_INPUT,
        )
    token = (token or os.environ.get(TOKEN_ENV) or "").strip()
    if not token:
        raise RemoteError(
            f"--token: a token is needed with --server (or set {TOKEN_ENV}); "
            "create one on the server with `netlens tokens create USER`",
            EXIT_BAD_INPUT,
        )
    if parts.scheme == "http" and not _loopback(parts.hostname):
        print(
            f"warning: the token travels unencrypted to {parts.hostname} over http://; "
            "use https://",
            file=sys.stderr,
        )
    return Client(server.rstrip("/"), token)


class Client:
    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "netlens-cli",
            }
        )

    # -- the three commands ----------------------------------------------------------------

    def list_runs(
        self,
        limit: int,
        status: str | None = None,
        group: int | None = None,
        where: str | None = None,
    ) -> list[RunInfo]:
        """The `limit` most recent runs (several pages when over the API's 500), those
        matching the filter expression `where` when given."""
        items: list[RunInfo] = []
        while len(items) < limit:
            page = min(PAGE_LIMIT, limit - len(items))
            params = {
                "limit": page,
                "offset": len(items),
                "status": status,
                "group": group,
                "where": where or None,
            }
            data = self._request(
                "GET", "/api/runs", params={k: v for k, v in params.items() if v is not None}
            ).json()
            items += [run_info(d) for d in data["runs"]]
            if len(data["runs"]) < page:
                break
        return items

    def submit(self, spec: ExperimentSpec) -> int:
        data = self._request(
            "POST", "/api/runs", json={"spec": spec.model_dump(mode="json")}
        ).json()
        return int(data["id"])

    def export(self, run_id: int, out: str | Path, compress: bool = False) -> Path:
        """Stream the run's .npz to `out` (via `out`.part, renamed when complete)."""
        path = Path(out)
        response = self._request(
            "GET",
            f"/api/runs/{run_id}/export",
            params={"compress": "true"} if compress else None,
            stream=True,
            read_timeout=EXPORT_READ_TIMEOUT_S,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        try:
            with response, open(part, "wb") as f:
                for block in response.iter_content(chunk_size=1 << 20):
                    f.write(block)
            expected = response.headers.get("Content-Length")
            if expected is not None and part.stat().st_size != int(expected):
                raise RemoteError(
                    f"export: the server sent {part.stat().st_size} of {expected} bytes; try again"
                )
            part.replace(path)
        except requests.RequestException as exc:
            raise RemoteError(
                f"--server: the download from {self.base_url} broke off "
                f"({exc.__class__.__name__}); try again"
            ) from None
        finally:
            part.unlink(missing_ok=True)
        return path

    def check_token(self) -> None:
        """Raise RemoteError now if the server refuses the token (or cannot be reached)."""
        self._request("GET", "/api/v1/tokens")

    # -- plumbing ----------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, read_timeout: float = READ_TIMEOUT_S, **kwargs: Any
    ) -> requests.Response:
        url = self.base_url + path
        try:
            response = self._session.request(
                method, url, timeout=(CONNECT_TIMEOUT_S, read_timeout), **kwargs
            )
        except requests.ConnectionError as exc:
            reason = (
                "connection refused"
                if "refused" in str(exc).lower()
                else f"{exc.__class__.__name__}"
            )
            raise RemoteError(
                f"--server: cannot connect to {self.base_url} ({reason}); is "
                "NetLens running there (`netlens serve`)?"
            ) from None
        except requests.Timeout:
            raise RemoteError(
                f"--server: {self.base_url} did not answer within {read_timeout:.0f} s"
            ) from None
        except requests.RequestException as exc:
            raise RemoteError(
                f"--server: {method} {url} failed ({exc.__class__.__name__})"
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: requests.Response) -> RemoteError:
    code = response.status_code
    try:
        body = response.json()
        message, errors = str(body.get("error") or ""), list(body.get("errors") or [])
    except (ValueError, AttributeError):
        message, errors = "", []
    message = message or f"HTTP {code} {response.reason}"
    if code == 401:
        return RemoteError(
            "--token: the server refused the token (401): it is unknown or "
            "revoked, or its user is disabled; create one with `netlens tokens "
            "create USER` on the server"
        )
    if code == 403:
        return RemoteError(f"not allowed (403): {message}")
    if code == 422 and errors:
        return RemoteError(
            "refused by the server (422):\n  " + "\n  ".join(errors), EXIT_BAD_INPUT, errors
        )
    if code == 429:  # a per-user limit (or a login throttle): the message names it
        return RemoteError(f"refused by the server (429): {message}")
    if code in (400, 404, 413, 415, 422):
        return RemoteError(f"{message} ({code})", EXIT_BAD_INPUT, errors)
    return RemoteError(f"server: {message} ({code})")


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def run_info(data: dict[str, Any]) -> RunInfo:
    """A run from the API as the RunInfo the local commands print (owner and page in
    `extra`), so `--server` output has the same shape as local output."""
    values = {k: data.get(k) for k in RunInfo.__dataclass_fields__ if k != "extra"}
    for key in ("created_at", "started_at", "finished_at", "thinned_at"):
        values[key] = _when(values[key])
    values["extra"] = {"owner": data.get("owner"), "url": data.get("url")}
    return RunInfo(**values)
