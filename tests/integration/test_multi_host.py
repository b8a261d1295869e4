"""Workers on several hosts, for real (issue 19 part 4): each host is a network namespace of
its own on this machine, joined to the others by veth pairs on one bridge, with an address of
its own and nothing else in common but the files:

    services  10.231.N.2   a private PostgreSQL (initdb in a temporary folder) and redis-server
    web       10.231.N.3   `netlens serve --workers 0` (web app and reaper)
    w1, w2    10.231.N.4/5 `netlens worker`, one each
    (this test process, the operator, reaches them over the bridge at 10.231.N.1)

PostgreSQL and Redis listen only on the services address. The tests run jobs across both
workers, cut one worker's link mid-run (its lease expires, the job resumes on the other
worker from the checkpoint, the cut worker writes nothing once reconnected and says it was
fenced off), and stop and start Redis and PostgreSQL during a run. A trigger on run_epochs
notes the client address of every epoch row written, so who wrote what is the database's
own record, not a worker's claim.

Needs root and `ip` (network namespaces), PostgreSQL's server binaries and redis-server;
without them the module skips with the reason (an error on CI)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis

from netlens.dispatch.submission import submit_spec
from netlens.storage import jobs, records, runs, workers
from netlens.storage.db import Database
from netlens.storage.settings import Settings
from netlens.worker.datasets import load_dataset
from netlens.worker.train import Trainer
from tests.conftest import require_service, small_spec

HOSTS = {"services": 2, "web": 3, "w1": 4, "w2": 5}
WORKERS = ("w1", "w2")
HEARTBEAT_S, LEASE_S = 0.5, 4


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _missing() -> str | None:
    """Why this machine cannot build the namespaces, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "setpriv", "redis-server", "openssl"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    if _pg_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user to run the private PostgreSQL as (initdb refuses root)"
    return None


def _sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


def _wait(condition, timeout: float, what: str, diagnosis=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{diagnosis() if diagnosis else ''}")


def _free_subnet() -> int:
    """A 10.231.N.0/24 that no route of this machine uses."""
    routes = _sh("ip", "-4", "route", "show", "table", "all").stdout
    taken = {int(m) for m in re.findall(r"10\.231\.(\d+)\.", routes)}
    free = [n for n in range(1, 255) if n not in taken]
    if not free:
        raise RuntimeError("no free 10.231.N.0/24")
    return free[uuid.uuid4().int % len(free)]


class Lab:
    """The namespaces, the bridge, the servers and the processes of one test module."""

    def __init__(self):
        self.tag = uuid.uuid4().hex[:5]
        self.net = _free_subnet()
        self.bridge = f"nl{self.tag}br"
        self.created_ns: list[str] = []
        self.bridge_made = False
        self.procs: dict[str, subprocess.Popen] = {}
        self.root = Path(tempfile.mkdtemp(prefix=f"netlens-hosts-{self.tag}-"))
        os.chmod(self.root, 0o755)  # the postgres user reaches its data folder through it
        self.home = self.root / "home"
        self.home.mkdir()
        self.pg_data = self.root / "pg"
        self.pg_socket = self.root / "pg-socket"
        self.settings: Settings | None = None
        self.db: Database | None = None

    # ---- network ----

    def ns(self, host: str) -> str:
        return f"nl-{self.tag}-{host}"

    def addr(self, host: str) -> str:
        return f"10.231.{self.net}.{HOSTS[host]}"

    def port_of(self, host: str) -> str:
        """The bridge end of a host's veth pair: its switch port, whose cable can be pulled."""
        return f"nl{self.tag}{HOSTS[host]}p"

    def build_network(self) -> None:
        _sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.bridge_made = True
        _sh("ip", "addr", "add", f"10.231.{self.net}.1/24", "dev", self.bridge)
        _sh("ip", "link", "set", self.bridge, "up")
        for host in HOSTS:
            ns, inner, outer = self.ns(host), f"nl{self.tag}{HOSTS[host]}", self.port_of(host)
            _sh("ip", "netns", "add", ns)
            self.created_ns.append(ns)
            _sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            _sh("ip", "link", "set", inner, "netns", ns)
            _sh("ip", "link", "set", outer, "master", self.bridge)
            _sh("ip", "link", "set", outer, "up")
            _sh(
                "ip",
                "netns",
                "exec",
                ns,
                "ip",
                "addr",
                "add",
                f"{self.addr(host)}/24",
                "dev",
                inner,
            )
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def cable(self, host: str, connected: bool) -> None:
        _sh("ip", "link", "set", self.port_of(host), "up" if connected else "down")

    # ---- processes ----

    def start(self, name: str, host: str, argv: list[str], env=None, as_postgres=False):
        log = self.root / f"{name}.log"
        drop = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups"]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(host), *(drop if as_postgres else []), *argv],
            env=env or os.environ,
            stdout=open(log, "a"),
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, name: str, sig=signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    # ---- services ----

    def pg_url(self, database: str, tls: bool = True) -> str:
        url = f"postgresql://postgres@{self.addr('services')}:5432/{database}"
        if tls:  # the server's certificate must be signed by the lab's CA, for this address
            return f"{url}?sslmode=verify-full&sslrootcert={self.ca}"
        return f"{url}?sslmode=disable"

    @property
    def pg_admin_url(self) -> str:
        return self.pg_url("postgres")

    @property
    def database_url(self) -> str:
        return self.pg_url("netlens")

    def redis_url(self, tls: bool = True) -> str:
        if tls:
            return (
                f"rediss://{self.addr('services')}:6379/0"
                f"?ssl_cert_reqs=required&ssl_ca_certs={self.ca}"
            )
        return f"redis://{self.addr('services')}:6379/0"

    @property
    def broker_url(self) -> str:
        return self.redis_url()

    def make_certificates(self) -> None:
        """A certificate authority of this lab and a server certificate for the services
        address (its only name: PostgreSQL's verify-full and Redis' client check it)."""
        tls = self.root / "tls"
        tls.mkdir()
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _sh(
            "openssl",
            "req",
            "-x509",
            *key,
            "-keyout",
            str(tls / "ca.key"),
            "-out",
            str(self.ca),
            "-days",
            "1",
            "-subj",
            f"/CN=netlens lab {self.tag} CA",
        )
        _sh(
            "openssl",
            "req",
            *key,
            "-keyout",
            str(tls / "server.key"),
            "-out",
            str(tls / "server.csr"),
            "-subj",
            f"/CN={self.addr('services')}",
        )
        (tls / "san.cnf").write_text(f"subjectAltName=IP:{self.addr('services')}\n")
        _sh(
            "openssl",
            "x509",
            "-req",
            "-in",
            str(tls / "server.csr"),
            "-CA",
            str(self.ca),
            "-CAkey",
            str(tls / "ca.key"),
            "-CAcreateserial",
            "-out",
            str(tls / "server.pem"),
            "-days",
            "1",
            "-extfile",
            str(tls / "san.cnf"),
        )
        for name in ("server.key", "server.pem"):
            shutil.chown(tls / name, "postgres", "postgres")
        os.chmod(tls / "server.key", 0o600)

    @property
    def ca(self) -> Path:
        return self.root / "tls" / "ca.pem"

    def init_postgres(self) -> None:
        for folder in (self.pg_data, self.pg_socket):
            folder.mkdir()
            shutil.chown(folder, "postgres", "postgres")
        argv = [str(_pg_bin() / "initdb"), "-D", str(self.pg_data), "-U", "postgres"]
        argv += ["--auth=trust", "-E", "UTF8", "--no-sync"]
        _sh("setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", *argv, timeout=120)
        with open(self.pg_data / "pg_hba.conf", "a") as hba:
            # over the lab's network: TLS or nothing
            hba.write(f"hostssl all all 10.231.{self.net}.0/24 trust\n")

    def start_postgres(self) -> None:
        argv = [str(_pg_bin() / "postgres"), "-D", str(self.pg_data), "-p", "5432"]
        argv += ["-c", f"listen_addresses={self.addr('services')}"]
        argv += ["-c", f"unix_socket_directories={self.pg_socket}", "-c", "fsync=off"]
        tls = self.root / "tls"
        argv += ["-c", "ssl=on", "-c", f"ssl_cert_file={tls / 'server.pem'}"]
        argv += ["-c", f"ssl_key_file={tls / 'server.key'}"]
        self.start("postgres", "services", argv, as_postgres=True)

        def answers() -> bool:
            try:
                with psycopg.connect(self.pg_admin_url, connect_timeout=1):
                    return True
            except psycopg.OperationalError:
                return False

        _wait(answers, 60, "PostgreSQL in the services namespace", lambda: self.log("postgres"))

    def stop_postgres(self) -> None:
        self.stop("postgres", signal.SIGINT, 60)  # a fast shutdown: sessions are ended

    def start_redis(self) -> None:
        tls = self.root / "tls"
        argv = ["redis-server", "--bind", self.addr("services"), "--port", "0"]
        argv += ["--tls-port", "6379", "--tls-cert-file", str(tls / "server.pem")]
        argv += ["--tls-key-file", str(tls / "server.key"), "--tls-ca-cert-file", str(self.ca)]
        argv += ["--tls-auth-clients", "no"]  # clients check the server; a password or ACL
        argv += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        self.start("redis", "services", argv)

        def answers() -> bool:
            try:
                return redis.Redis.from_url(self.broker_url, socket_connect_timeout=0.5).ping()
            except redis.exceptions.ConnectionError:
                return False

        _wait(answers, 30, "redis-server in the services namespace", lambda: self.log("redis"))

    def stop_redis(self) -> None:
        self.stop("redis", signal.SIGKILL)  # memory only: every queued message is lost

    # ---- NetLens ----

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "NETLENS_DATABASE_URL": self.database_url,
            "NETLENS_BROKER_URL": self.broker_url,
            "NETLENS_HOME": str(self.home),
            "NETLENS_HEARTBEAT_SECONDS": str(HEARTBEAT_S),
            "NETLENS_LEASE_SECONDS": str(LEASE_S),
            "NETLENS_CHECKPOINT_SECONDS": "0.3",
            "NETLENS_ANALYZE_AFTER_TRAINING": "0",
            "JAX_PLATFORMS": "cpu",
            **extra,
        }

    def netlens(self, host: str, *args: str, stdin: str | None = None) -> str:
        """A CLI command run on `host` (as an operator logged in there would)."""
        result = subprocess.run(
            ["ip", "netns", "exec", self.ns(host), sys.executable, "-m", "netlens.cli", *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"netlens {' '.join(args)}: {result.stderr}"
        return result.stdout

    def start_worker(self, host: str) -> None:
        self.start(
            host,
            host,
            [sys.executable, "-m", "netlens.cli", "worker", f"--name={host}"],
            env=self.env(),
        )

    def wait_worker_ready(self, host: str) -> None:
        _wait(
            lambda: (
                f"netlens: worker {host} ready" in self.log(host)
                or self.procs[host].poll() is not None
            ),
            120,
            f"worker {host} ready",
            lambda: self.log(host),
        )
        assert self.procs[host].poll() is None, self.log(host)

    def submit(self, spec) -> int:
        return submit_spec(self.db, self.settings, spec)

    def job(self, run_id: int):
        return jobs.get_job(self.db, run_id)

    def wait_state(self, run_id: int, states: tuple[str, ...], timeout: float = 120):
        _wait(
            lambda: self.job(run_id).state in states,
            timeout,
            f"run {run_id} {states}",
            self.diagnosis,
        )
        return self.job(run_id)

    def diagnosis(self) -> str:
        logs = "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in ("web", *WORKERS))
        try:
            with psycopg.connect(self.database_url, connect_timeout=2) as conn:
                rows = conn.execute(
                    "SELECT run_id, state, attempt, worker_id, progress_epoch, error FROM jobs"
                ).fetchall()
        except psycopg.OperationalError as exc:
            rows = [f"(cannot read the jobs: {exc})"]
        return logs + "\n--- jobs\n" + "\n".join(map(str, rows))

    def writers(self, run_id: int) -> list[tuple[int, str, float]]:
        """(epoch, client address, server time) of every epoch row of the run ever committed."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(
                "SELECT epoch, host(addr), extract(epoch FROM at)::float8 "
                "FROM audit.epoch_writers WHERE run_id = %s ORDER BY at",
                (run_id,),
            ).fetchall()

    def server_now(self) -> float:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[
                0
            ]

    # ---- the end ----

    def cleanup(self) -> None:
        if self.db is not None:
            self.db.dispose()
        self.stop_postgres()  # its server processes end with it
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL, 10)
        for ns in self.created_ns:  # anything left inside (children of what was started)
            pids = _sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for host in HOSTS:  # both ends of each veth pair (a namespace may outlive its name)
            _sh("ip", "link", "del", self.port_of(host), check=False)
        for ns in self.created_ns:
            _sh("ip", "netns", "del", ns, check=False)
        if self.bridge_made:
            _sh("ip", "link", "del", self.bridge, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


AUDIT_SQL = """
CREATE SCHEMA audit;
CREATE TABLE audit.epoch_writers (
    run_id integer, epoch integer, addr inet, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION audit.note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.epoch_writers (run_id, epoch, addr)
    VALUES (NEW.run_id, NEW.epoch, inet_client_addr());
    RETURN NEW;
END $$;
CREATE TRIGGER note_writer AFTER INSERT ON run_epochs
    FOR EACH ROW EXECUTE FUNCTION audit.note_writer();
"""


@pytest.fixture(scope="module")
def lab():
    reason = _missing()
    if reason:
        require_service("network namespaces", RuntimeError(reason))
    lab = Lab()
    try:
        try:
            lab.build_network()
        except (RuntimeError, subprocess.SubprocessError) as exc:
            require_service("network namespaces", exc)
        lab.make_certificates()
        lab.init_postgres()
        lab.start_postgres()
        lab.start_redis()
        with psycopg.connect(lab.pg_admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE netlens")
        lab.netlens("web", "db", "upgrade")  # what compose's `migrate` service does
        with psycopg.connect(lab.database_url, autocommit=True) as conn:
            conn.execute(AUDIT_SQL)
        lab.settings = Settings(
            database_url=lab.database_url,
            broker_url=lab.broker_url,
            home=lab.home,
            heartbeat_seconds=HEARTBEAT_S,
            lease_seconds=LEASE_S,
        )
        lab.db = Database(lab.settings.resolved_database_url)
        port = "8050"
        lab.start(
            "web",
            "web",
            [
                sys.executable,
                "-m",
                "netlens.cli",
                "serve",
                "--workers",
                "0",
                "--host",
                lab.addr("web"),
                "--port",
                port,
            ],
            env=lab.env(),
        )
        for host in WORKERS:
            lab.start_worker(host)
        for host in WORKERS:
            lab.wait_worker_ready(host)
        yield lab
    finally:
        lab.cleanup()


def _tiny_spec(name: str):
    return small_spec(
        name=name,
        dataset={"name": "xor"},
        training={"epochs": 100, "batch_size": 4},
        model={"hidden": [{"units": 3, "activation": "tanh"}]},
        optimizer={"name": "adam", "learning_rate": 0.05},
    )


def _long_spec():
    """Several seconds of training (4,000 one-input steps an epoch), every epoch recorded:
    time to cut a link or restart a server part-way."""
    return small_spec(
        name="long",
        dataset={"name": "two-regions", "n_samples": 5000},
        model={"hidden": [{"units": 32, "activation": "relu"}, {"units": 2, "activation": "relu"}]},
        training={"epochs": 300, "batch_size": 1, "seed": 0},
        recording={"probe_size": 50, "grid_resolution": 10},
    )


@cache
def _uninterrupted_final_params() -> dict[str, np.ndarray]:
    spec = _long_spec()
    state = Trainer(spec, load_dataset(spec), record=False).run(lambda c: None)
    return {
        f"params/{k}/{p}": np.asarray(v) for k, ps in state.params.items() for p, v in ps.items()
    }


def _assert_complete(lab: Lab, run_id: int, epochs: int) -> None:
    info = runs.get_run(lab.db, run_id)
    assert info.status == "succeeded", info.error
    assert runs.recorded_epoch_numbers(lab.db, run_id) == list(range(epochs + 1))
    assert info.epochs_recorded == epochs + 1
    # every epoch row committed once, by the database's own record (a row rolled back with
    # its transaction leaves no trace there either)
    counts = Counter(epoch for epoch, _, _ in lab.writers(run_id))
    assert sorted(counts) == list(range(epochs + 1)) and set(counts.values()) == {1}


def _assert_same_final_params(lab: Lab, run_id: int) -> None:
    epochs = _long_spec().training.epochs
    for name, value in _uninterrupted_final_params().items():
        _, stored = records.read_tensor(lab.db, run_id, name, epochs)
        np.testing.assert_allclose(stored[-1], value, rtol=1e-4, atol=1e-5, err_msg=name)


def _get(url: str, token: str | None = None, body: bytes | None = None, kind: str = ""):
    """GET, or POST with a body of content type `kind`."""
    request = urllib.request.Request(url, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if kind:
        request.add_header("Content-Type", kind)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def test_the_services_speak_only_tls_with_a_certificate_for_their_address(lab):
    """What the other hosts reach: PostgreSQL and Redis on the services address, over TLS
    only (the workers and the web app use the verify-full / ssl_cert_reqs=required URLs)."""
    with psycopg.connect(lab.database_url, connect_timeout=5) as conn:
        assert conn.pgconn.ssl_in_use
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(lab.pg_url("netlens", tls=False), connect_timeout=5)
    assert redis.Redis.from_url(lab.redis_url(), socket_connect_timeout=2).ping()
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(lab.redis_url(tls=False), socket_timeout=2).ping()
    # a certificate for another name is refused (verify-full checks the address)
    other = lab.database_url.replace(lab.addr("services"), f"10.231.{lab.net}.1")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(other, connect_timeout=5)


def test_jobs_run_on_both_workers_and_the_web_app_on_its_host_shows_them(lab):
    ids = [lab.submit(_tiny_spec(f"spread{i}")) for i in range(6)]
    for run_id in ids:
        assert lab.wait_state(run_id, ("succeeded", "failed")).state == "succeeded"
        _assert_complete(lab, run_id, 100)
    assert {lab.job(i).worker_id for i in ids} == set(WORKERS), lab.diagnosis()
    # the database saw each worker's own address, and only those
    addresses = {addr for i in ids for _, addr, _ in lab.writers(i)}
    assert addresses == {lab.addr(w) for w in WORKERS}

    # the web app, on its own host, answers over its address and lists the runs
    web = f"http://{lab.addr('web')}:8050"

    def healthy() -> bool:
        try:
            return _get(f"{web}/healthz")[0] == 200
        except OSError:
            return False

    _wait(healthy, 60, "the web app's /healthz", lambda: lab.log("web"))
    lab.netlens("web", "users", "add", "operator", "--admin", stdin="a long pass phrase 19\n")
    token = lab.netlens("web", "tokens", "create", "operator").strip().splitlines()[-1]

    status, body = _get(f"{web}/api/v1/runs?limit=100", token)
    listed = json.loads(body)
    items = listed["runs"] if isinstance(listed, dict) else listed
    assert status == 200 and {r["id"] for r in items} >= set(ids), listed

    # a file uploaded to the web host is trained on by a worker host: the data folder is
    # shared at the same path (the namespaces share one file system, as an NFS mount would)
    table = b"x1,x2,label\n" + b"0,0,a\n0,1,b\n1,0,b\n1,1,a\n" * 5
    status, body = _get(f"{web}/api/v1/uploads?name=table.csv", token, table, "text/csv")
    assert status == 201, body
    spec = {
        "name": "uploaded",
        "dataset": {"name": "csv", "upload": json.loads(body)["id"], "label_column": "label"},
        "training": {"epochs": 5},
        "recording": {"probe_size": 4},
    }
    request = json.dumps({"spec": spec}).encode()
    status, body = _get(f"{web}/api/v1/runs", token, request, "application/json")
    assert status == 201, body
    run_id = json.loads(body)["id"]
    job = lab.wait_state(run_id, ("succeeded", "failed"))
    assert job.state == "succeeded" and job.worker_id in WORKERS, job.error


def test_a_worker_cut_off_mid_run_is_fenced_and_the_job_resumes_on_the_other(lab):
    spec = _long_spec()
    run_id = lab.submit(spec)
    _wait(lambda: lab.job(run_id).progress_epoch >= 30, 120, "epoch 30", lab.diagnosis)
    victim = lab.job(run_id).worker_id
    other = next(w for w in WORKERS if w != victim)
    lab.cable(victim, connected=False)  # its switch port: the worker itself notices nothing
    cut = lab.server_now()
    try:
        _wait(
            lambda: (j := lab.job(run_id)).attempt == 2 and j.state in ("running", "succeeded"),
            60,
            "the job to move to the other worker",
            lab.diagnosis,
        )
        moved = lab.server_now()
        job = lab.job(run_id)
        assert job.worker_id == other, lab.diagnosis()
        # the admin page shows it unheard of (its beats, as its writes, wait on a dead link)
        listed = {w.name: w.state for w in workers.list_workers(lab.db, HEARTBEAT_S)}
        assert listed[victim] == "offline", listed
        time.sleep(1)  # the victim trains on, cut off
    finally:
        lab.cable(victim, connected=True)
    reconnected = time.monotonic()
    # reconnected, the victim's next write or heartbeat is refused: it stops and says so
    fenced = f"run {run_id} attempt 1 was fenced off"
    _wait(
        lambda: fenced in lab.log(victim), 90, "the cut-off worker to report itself", lab.diagnosis
    )
    reported_in = time.monotonic() - reconnected
    job = lab.wait_state(run_id, ("succeeded", "failed"), 180)
    assert job.state == "succeeded" and job.attempt == 2 and job.worker_id == other
    assert f"run {run_id} attempt 1 ended lost" in lab.log(victim)
    assert lab.procs[victim].poll() is None  # and it goes on serving the queue,
    # heard from again on the admin page
    _wait(
        lambda: any(
            w.name == victim and w.state == "online"
            for w in workers.list_workers(lab.db, HEARTBEAT_S)
        ),
        30,
        "the cut-off worker online again",
        lab.diagnosis,
    )

    _assert_complete(lab, run_id, spec.training.epochs)
    _assert_same_final_params(lab, run_id)
    resumed = re.findall(
        rf"run {run_id} resumed from its checkpoint at epoch (\d+): first epoch trained (\d+)",
        lab.log(other),
    )
    assert len(resumed) == 1, lab.log(other)
    checkpoint, first = map(int, resumed[0])
    writers = lab.writers(run_id)
    by_victim = [(e, at) for e, addr, at in writers if addr == lab.addr(victim)]
    by_other = [e for e, addr, _ in writers if addr == lab.addr(other)]
    assert by_victim and by_other  # both wrote: the victim before the cut, the other after
    last_by_victim = max(e for e, _ in by_victim)
    # a resume, not a restart: from a checkpoint the victim wrote before the cut
    assert 0 < checkpoint <= last_by_victim and first == checkpoint + 1
    assert max(at for _, at in by_victim) < moved  # nothing from the victim once fenced off
    assert min(by_other) == last_by_victim + 1  # the other wrote every epoch after that
    print(
        f"cut after epoch {last_by_victim}; resumed from the checkpoint at epoch {checkpoint} "
        f"{moved - cut:.1f} s after the cut; the victim reported itself fenced off "
        f"{reported_in:.1f} s after reconnection"
    )


def test_redis_and_postgresql_restarted_mid_run_lose_no_job_and_duplicate_no_epoch(lab):
    spec = _long_spec()
    running = lab.submit(spec)
    _wait(lambda: lab.job(running).progress_epoch >= 20, 120, "epoch 20", lab.diagnosis)
    waiting = [lab.submit(_tiny_spec(f"waiting{i}")) for i in range(4)]

    lab.stop_redis()  # every queued message is gone with it
    lost = [r for r in waiting if lab.job(r).state == "queued"]
    assert lost, "every job was taken before the restart: nothing tested"
    time.sleep(1)
    lab.start_redis()
    at_redis = lab.job(running).progress_epoch
    _wait(
        lambda: lab.job(running).progress_epoch >= at_redis + 10, 120, "training on", lab.diagnosis
    )

    assert runs.get_run(lab.db, running).status == "running"
    lab.db.dispose()
    stopped = time.monotonic()
    lab.stop_postgres()  # fast shutdown: every session is ended
    lab.start_postgres()  # (down for longer than the lease, the job would rightly move on)
    pg_down = time.monotonic() - stopped
    assert runs.get_run(lab.db, running).last_epoch < spec.training.epochs  # not over yet
    after = lab.submit(_tiny_spec("after"))

    for run_id in (running, *waiting, after):
        job = lab.wait_state(run_id, ("succeeded", "failed"), 240)
        assert job.state == "succeeded", lab.diagnosis()
    # both servers really went away and came back (their own logs)
    assert lab.log("postgres").count("database system is ready to accept connections") == 2
    assert lab.log("postgres").count("database system is shut down") == 1
    assert lab.log("redis").count("Ready to accept connections") == 2
    _assert_complete(lab, running, spec.training.epochs)
    _assert_same_final_params(lab, running)
    for run_id in (*waiting, after):
        _assert_complete(lab, run_id, 100)
    logs = "".join(lab.log(w) for w in WORKERS)
    for run_id in (running, *waiting, after):  # each ran once: one attempt, one start
        assert lab.job(run_id).attempt == 1, lab.diagnosis()
        assert logs.count(f"run {run_id} started (attempt") == 1, lab.diagnosis()
    print(
        f"{len(lost)} queued jobs lost with Redis' messages, all run once; PostgreSQL down "
        f"for {pg_down:.1f} s"
    )
