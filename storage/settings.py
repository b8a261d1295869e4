"""NetLens settings from NETLENS_* environment variables, in one typed object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "netlens"


class Settings(BaseSettings):
    """Read once at start-up and passed explicitly to the engine, worker and app factories."""

    model_config = SettingsConfigDict(env_prefix="NETLENS_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # default: SQLite file <home>/netlens.db
    data_dir: Path | None = None  # default: <home>/data (MNIST files, uploads)
    broker_url: str | None = None  # default: a filesystem broker in <home>/broker (no server)
    heartbeat_seconds: float = 10.0  # a running job renews its lease this often
    lease_seconds: float = 60.0  # a job whose lease is this old is requeued by the reaper
    checkpoint_seconds: float = 5.0  # resumable state saved this often (a resume redoes less)
    max_attempts: int = 3  # deliveries of one job before it fails for good
    job_time_limit_seconds: float | None = None  # soft limit per job: saved, then failed
    analyze_after_training: bool = True  # queue the last epoch's signature analyses
    # Where the web app is reached: the Python API's run.url links (netlens/sdk/reading.py)
    url: str = "http://127.0.0.1:8050"
    # Team server (issue 7). auth "auto": login required unless the web app listens only on
    # the loopback address (then single-user mode, no login); "required": always.
    auth: Literal["auto", "required"] = "auto"
    cookie_secure: bool | None = None  # None: Secure cookies when the request came over HTTPS
    proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-* headers to trust
    # Single-user mode answers only to Host localhost, 127.0.0.1 and [::1] (against DNS
    # rebinding); extra names this machine is reached by, comma-separated (e.g. "mybox.local").
    allowed_hosts: str = ""
    debug: bool = False  # Dash/Flask debug mode (tracebacks in the browser): never on a server
    max_upload_mb: int = 64  # CSV / MNIST files uploaded through the web app
    # Request bodies other than uploads (Dash callbacks, forms, API calls): the largest real
    # callback, the many-runs page's brush with 1,000 runs, sends ~0.45 MiB
    max_request_kb: int = 2048
    # A chunk of epochs streamed by the Python API to a team server (webapp/api_ingest.py); a
    # client-trained run's fixed arrays may be LIMITS["max_data_bytes"] more (fit's data)
    max_chunk_mb: int = Field(64, ge=1, le=4096)
    # Login throttle (storage/throttle.py): per (name, address) this many failures are free,
    # then each waits twice as long (2 s, 4 s, ... up to the max); per address, across
    # names, at most login_address_limit failures per window.
    login_free_failures: int = Field(3, ge=1, le=100)
    login_max_delay_seconds: int = Field(900, ge=1, le=86400)
    login_address_limit: int = Field(30, ge=1, le=10000)
    login_window_minutes: int = Field(15, ge=1, le=1440)
    session_idle_minutes: int = Field(480, ge=1, le=43200)  # a session unused this long ends
    # The web process remembers who a session or token is for this long (0: off); a logout,
    # password change, disabling or revocation in another process reaches it this late
    # (storage/identity_cache.py).
    identity_cache_seconds: float = Field(2.0, ge=0, le=60)

    # Per-user limits on a team server (storage/limits.py; 0: no limit). An admin overrides
    # them team-wide and per user; admins and the CLI on the server are not limited.
    max_active_jobs_per_user: int = Field(100, ge=0)  # queued + running: two full sweeps
    max_sweep_runs: int = Field(50, ge=0)  # per sweep, for members (the hard cap is 200)
    max_uploads_per_user: int = Field(20, ge=0)
    max_upload_bytes_per_user: int = Field(2**30, ge=0)  # 1 GiB: 16 uploads at the 64 MB cap
    team_job_time_limit_seconds: int = Field(6 * 3600, ge=0)  # when job_time_limit_seconds
    # is unset: a forgotten run frees its worker by the next morning
    unused_upload_hours: float = Field(24.0, ge=0)  # uploads no run took are then deleted

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 2**20

    @property
    def max_chunk_bytes(self) -> int:
        return self.max_chunk_mb * 2**20

    @property
    def max_request_bytes(self) -> int:
        return self.max_request_kb * 1024

    @property
    def allowed_host_names(self) -> frozenset[str]:
        """NETLENS_ALLOWED_HOSTS as lower-case names without brackets or ports."""
        names = set()
        for entry in self.allowed_hosts.split(","):
            entry = entry.strip().lower()
            if entry.startswith("[") and "]" in entry:
                entry = entry[1 : entry.index("]")]  # "[fe80::1]:8050" -> "fe80::1"
            elif entry.count(":") == 1:
                entry = entry.split(":")[0]  # "mybox.local:8050" -> "mybox.local"
            if entry:
                names.add(entry)
        return frozenset(names)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.home / 'netlens.db'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.home / "broker"

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.home / "data"


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
