"""The package a Python user installs: one top-level name, `netlens`.

The repository keeps its folders (webapp/, worker/, storage/, migrations/ beside netlens/);
pyproject.toml maps them to netlens.webapp, netlens.worker, netlens.storage and
netlens.migrations. This builds the wheel from the tracked files alone, installs it in a
fresh virtual environment (its dependencies borrowed from this one's site-packages through a
.pth line, so nothing is downloaded and this venv's editable NetLens stays out), and checks
from an empty folder that `netlens db upgrade`, `netlens serve` and `netlens worker` work,
that the assets, the plotly bundles and the migrations are in it, and that `import storage`
and its siblings fail there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.integration.test_embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {
    "netlens": "netlens",
    "netlens.storage": "storage",
    "netlens.worker": "worker",
    "netlens.webapp": "webapp",
    "netlens.migrations": "migrations",
}
BARE_NAMES = ("storage", "worker", "webapp", "migrations")


def _tracked_python_folders() -> set[str]:
    """The dotted names of the folders that hold tracked Python code, per the mapping."""
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    names = set()
    for name, folder in MAPPED.items():
        for path in files:
            if path.startswith(folder + "/"):
                parts = Path(path).parent.parts[1:]
                names.add(".".join((name, *parts)))
    return names


def test_every_folder_of_python_code_is_a_listed_package_and_mapped():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == MAPPED
    assert set(config["packages"]) == _tracked_python_folders()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin folder, the wheel's file names) of a fresh install."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = tmp / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("netlens-*.whl")
    names = zipfile.ZipFile(wheel).namelist()

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Dependencies from this venv: a path added by a .pth line is not scanned for .pth files
    # itself, so this venv's editable finder (__editable__*.pth) does not come along.
    Path(purelib, "netlens-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return python, venv / "bin", names


def _env(home: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NETLENS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return {
        **env,
        "NETLENS_HOME": str(home),
        "JAX_PLATFORMS": "cpu",
        "NETLENS_ANALYZE_AFTER_TRAINING": "0",
    }


def test_the_wheel_holds_only_netlens_with_its_assets_bundles_and_migrations(installed):
    _, _, names = installed
    assert {n.split("/")[0] for n in names} == {"netlens", "netlens-0.1.0.dist-info"}
    for needed in (
        "netlens/webapp/assets/netlens-plotly.min.js",
        "netlens/webapp/assets/netlens-plotly-gl3d.lazy.js",
        "netlens/webapp/assets/00-bootstrap.min.css",
        "netlens/webapp/pages/run.py",
        "netlens/migrations/env.py",
        "netlens/migrations/script.py.mako",
        "netlens/storage/models.py",
        "netlens/worker/train.py",
        "netlens/cli.py",
    ):
        assert needed in names, needed
    versions = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert versions and all(f"netlens/migrations/versions/{v}" in names for v in versions)


def test_the_bare_names_are_not_importable_and_netlens_comes_from_the_wheel(installed, tmp_path):
    python, _, _ = installed
    for bare in BARE_NAMES:
        result = subprocess.run(
            [str(python), "-c", f"import {bare}"],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, bare
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import netlens.webapp.app, netlens.storage.db; print(netlens.webapp.app.__file__)",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(python.parent.parent)


def test_db_upgrade_serve_and_worker_run_from_the_wheel(installed, tmp_path):
    python, bin_dir, _ = installed
    netlens = str(bin_dir / "netlens")
    home, env = tmp_path / "home", _env(tmp_path / "home")
    run = dict(cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    upgraded = subprocess.run([netlens, "db", "upgrade"], **run)
    assert upgraded.returncode == 0, upgraded.stderr
    assert (home / "netlens.db").exists()
    current = subprocess.run([netlens, "db", "current"], **run)
    latest = sorted(p.stem.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("*.py"))[
        -1
    ]
    assert current.returncode == 0 and latest in current.stdout, current.stdout + current.stderr

    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - the server's whole life
    serve = subprocess.Popen(
        [netlens, "serve", "--workers", "0", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.3)
        for path in ("/", "/runs", "/assets/netlens-plotly.min.js"):
            with urllib.request.urlopen(url + path, timeout=30) as answer:
                assert answer.status == 200, path

        submitted = subprocess.run([netlens, "submit", "--preset", "xor", "--epochs", "3"], **run)
        assert submitted.returncode == 0, submitted.stderr
        run_id = submitted.stdout.split()[-1]
        worker = subprocess.Popen(
            [netlens, "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while True:
            shown = subprocess.run([netlens, "show", run_id, "--json"], **run)
            status = json.loads(shown.stdout)["status"] if shown.returncode == 0 else None
            if status in ("succeeded", "failed", "cancelled", "diverged"):
                break
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, f"run {run_id} still {status}"
            time.sleep(1)
        assert status == "succeeded"
        with urllib.request.urlopen(f"{url}/runs/{run_id}/export.npz", timeout=60) as answer:
            assert answer.status == 200 and answer.read(4) == b"PK\x03\x04"
    finally:
        for process in (worker, serve):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, 15)
                process.wait(30)
        log.close()
