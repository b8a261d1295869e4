"""The `netlens` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

NETLENS = [sys.executable, "-m", "netlens.cli"]


def _run(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*NETLENS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"netlens {args} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture
def home_env(tmp_path) -> dict[str, str]:
    return {"NETLENS_HOME": str(tmp_path / "home"), "NETLENS_DATABASE_URL": ""}


@pytest.fixture
def pg_env(pg_db, tmp_path) -> dict[str, str]:
    return {"NETLENS_HOME": str(tmp_path / "home"), "NETLENS_DATABASE_URL": pg_db.url}


def test_train_show_runs_and_export_on_the_default_sqlite(home_env, tmp_path):
    train = _run(["train", "--preset", "xor", "--epochs", "300"], home_env)
    run_id = train.stdout.strip().splitlines()[-1]
    assert run_id.isdigit()
    assert "epoch" in train.stderr  # the progress bar and summary go to stderr
    assert (tmp_path / "home" / "netlens.db").exists()

    shown = json.loads(_run(["show", run_id, "--json"], home_env).stdout)
    assert shown["id"] == int(run_id) and shown["status"] == "succeeded"
    assert shown["epochs_recorded"] == 301 and shown["epochs_total"] == 300

    table = _run(["runs"], home_env).stdout
    assert f"{run_id:>5}  succeeded" in table and "xor" in table

    out = tmp_path / "xor.npz"
    _run(["export", run_id, str(out)], home_env)
    with np.load(out) as f:
        assert f["epochs"].tolist() == list(range(301))
        assert f["params/hidden_1/kernel"].shape == (301, 2, 3)

    # `netlens figure`: the page's views as files (PNG at width x height x 2, SVG, HTML)
    png, svg, html = tmp_path / "fig" / "net.png", tmp_path / "loss.svg", tmp_path / "t.html"
    _run(
        ["figure", run_id, "network", "--epoch", "150", "-o", str(png), "--width", "900"], home_env
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png.read_bytes()[16:20], "big") == 900 * 2  # IHDR width, scale 2
    _run(["figure", run_id, "loss", "-o", str(svg)], home_env)
    assert svg.read_text().lstrip().startswith("<svg") and "Loss" in svg.read_text()
    _run(
        ["figure", run_id, "trajectories", "--layer", "hidden_1", "--neuron", "2", "-o", str(html)],
        home_env,
    )
    page = html.read_text()  # one file that opens offline: plotly.js and the figure inside
    assert "Plotly.newPlot" in page and "Neuron 2" in page and "<script src=" not in page
    listed = _run(["figure", "--list"], home_env).stdout
    from netlens.sdk.figures import VIEWS
    from netlens.webapp.views.signatures import FIGURE_VIEWS

    assert [line.split()[0] for line in listed.splitlines()] == [*VIEWS, *FIGURE_VIEWS]
    for args, says in (
        (["figure", run_id, "nope", "-o", str(png)], "view: 'nope' is not a view"),
        (["figure", run_id, "network", "-o", str(tmp_path / "x.jpg")], "--output: .jpg"),
        (["figure", run_id, "network", "--epoch", "999", "-o", str(png)], "epoch: 999"),
        (["figure", "77", "loss", "-o", str(png)], "RUN_ID:"),
    ):
        bad = _run(args, home_env, check=False)
        assert bad.returncode == 2 and says in bad.stderr, (args, bad.stderr)


def test_train_on_postgresql_from_a_spec_file(pg_env, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: from-yaml\ndataset: {name: moons, n_samples: 200}\n"
        "model: {hidden: [{units: 6, activation: relu}]}\n"
        "training: {epochs: 20, batch_size: 20}\n"
    )
    run_id = _run(["train", str(spec), "--quiet"], pg_env).stdout.strip().splitlines()[-1]
    shown = json.loads(_run(["show", run_id, "--json"], pg_env).stdout)
    assert shown["name"] == "from-yaml" and shown["epochs_recorded"] == 21
    assert shown["spec"]["dataset"]["name"] == "moons"


def test_train_a_sequential_spec_file(home_env, tmp_path):
    """Model kind sequential (the Python API's layer list) from a spec file, on a built-in
    dataset: the CLI trains it like any spec."""
    spec = tmp_path / "seq.yaml"
    spec.write_text(
        "name: seq\ndataset: {name: digits, classes: [1, 7]}\n"
        "model:\n  kind: sequential\n  input_shape: [8, 8]\n  layers:\n"
        "    - {kind: conv2d, filters: 4, activation: relu}\n"
        "    - {kind: max_pool2d}\n    - {kind: flatten}\n"
        "    - {kind: dense, units: 1, activation: sigmoid}\n"
        "training: {epochs: 3}\n"
    )
    assert "ok: digits, 8x8-c4-p2-1, 3 epochs" in _run(["validate", str(spec)], home_env).stdout
    run_id = _run(["train", str(spec), "--quiet"], home_env).stdout.strip().splitlines()[-1]
    shown = json.loads(_run(["show", run_id, "--json"], home_env).stdout)
    assert shown["status"] == "succeeded" and shown["architecture"] == "8x8-c4-p2-1"
    assert [layer["name"] for layer in shown["layers"]] == ["conv_1", "output"]
    spec.write_text(
        spec.read_text().replace("units: 1, activation: sigmoid", "units: 3, activation: softmax")
    )
    refused = _run(["validate", str(spec)], home_env, check=False)
    assert refused.returncode == 2
    assert (
        "model.layers.3: the output layer gives 3 classes; dataset 'digits' has 2" in refused.stderr
    )


def test_invalid_spec_is_refused_before_anything_runs(home_env, tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("model: {hidden: [{units: 5000}]}\ntraining: {epochs: 0}\n")
    result = _run(["train", str(spec)], home_env, check=False)
    assert result.returncode == 2
    assert "model.hidden.0.units: 5000 is out of range: must be at most 1024" in result.stderr
    assert "training.epochs: 0 is out of range: must be at least 1" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "home" / "netlens.db").exists()  # nothing was created
    assert _run(["validate", str(spec)], home_env, check=False).returncode == 2


def test_unknown_preset_and_unknown_run(home_env):
    result = _run(["train", "--preset", "nope"], home_env, check=False)
    assert result.returncode == 2 and "preset: 'nope' is not a preset" in result.stderr
    result = _run(["show", "999"], home_env, check=False)
    assert result.returncode == 2 and "run 999 does not exist" in result.stderr


def test_presets_lists_every_preset(home_env):
    out = _run(["presets"], home_env).stdout
    for name in ("xor", "xor-deep", "two-regions", "spiral", "digits-1-7", "digits"):
        assert f"\n{name} " in f"\n{out}"


def test_db_upgrade_and_current(home_env):
    assert "database at revision" in _run(["db", "upgrade"], home_env).stdout
    current = _run(["db", "current"], home_env).stdout
    rev = current.split()[1].rstrip(",")
    assert rev != "None" and f"latest {rev}" in current


def test_a_diverging_run_exits_non_zero_and_still_prints_its_id(home_env, tmp_path):
    spec = tmp_path / "diverge.json"
    spec.write_text(
        json.dumps(
            {
                "dataset": {"name": "two-regions", "n_samples": 200},
                "model": {
                    "hidden": [
                        {"units": 16, "activation": "linear"},
                        {"units": 16, "activation": "linear"},
                    ]
                },
                "optimizer": {"name": "sgd", "learning_rate": 10.0},
                "training": {"epochs": 200, "batch_size": 200},
            }
        )
    )
    result = _run(["train", str(spec), "--quiet"], home_env, check=False)
    assert result.returncode == 1
    run_id = result.stdout.strip().splitlines()[-1]
    assert "diverged" in result.stderr
    shown = json.loads(_run(["show", run_id, "--json"], home_env).stdout)
    assert shown["status"] == "diverged" and shown["epochs_recorded"] >= 2


def test_storage_and_cli_modules_do_not_import_jax():
    code = (
        "import sys, netlens.storage.spec, netlens.storage.records, netlens.storage.export, "
        "netlens.storage.runs, netlens.storage.presets, netlens.cli, netlens.worker.datasets; "
        "assert 'jax' not in sys.modules, 'jax imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_processes_starting_together_on_a_fresh_home_migrate_it_once(home_env):
    env = {**os.environ, **home_env}
    procs = [
        subprocess.Popen(
            [*NETLENS, "runs"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _ in results), results
    words = _run(["db", "current"], home_env).stdout.replace(",", "").replace(":", "").split()
    assert words[1] == words[3] != "None"  # "current REV, latest REV: URL"


def _users_add(name: str, piped: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`netlens users add NAME` with `piped` on a real pipe and no --password-stdin."""
    return subprocess.run(
        [*NETLENS, "users", "add", name],
        input=piped,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_add_reads_a_piped_password_without_the_flag(home_env, tmp_path):
    from netlens.storage import users
    from netlens.storage.db import Database

    added = _users_add("alice", "correct horse battery\n", home_env)
    assert added.returncode == 0, added.stderr
    assert "Aborted" not in added.stderr and added.stdout.strip() == "user alice added"

    db = Database(f"sqlite:///{tmp_path / 'home' / 'netlens.db'}")
    # The newline is stripped and nothing else: the exact line logs in.
    assert users.authenticate(db, "alice", "correct horse battery", "127.0.0.1").name == "alice"

    # The same rules apply to a piped password; nothing is created on a refusal.
    short = _users_add("bob", "x\n", home_env)
    assert short.returncode != 0 and "password:" in short.stderr
    empty = _users_add("carol", "", home_env)
    assert empty.returncode != 0 and "nothing on stdin" in empty.stderr
    assert [u.name for u in users.list_users(db)] == ["alice"]


def test_runs_where_lists_the_matching_runs_and_names_a_bad_token(pg_env, pg_db):
    """`netlens runs --where EXPR` (docs/filter.md) on PostgreSQL: the runs the expression
    matches; a bad one fails before any query, naming the token and its column."""
    from netlens.storage import runs
    from tests.conftest import small_spec

    digits = runs.create_run(
        pg_db, small_spec(name="fast digits", dataset={"name": "digits"}, tags=["preset"])
    )
    slow = runs.create_run(pg_db, small_spec(name="slow xor", optimizer={"learning_rate": 0.001}))
    listed = json.loads(_run(["runs", "--json", "--where", "lr < 0.01"], pg_env).stdout)
    assert [r["id"] for r in listed] == [slow]
    listed = json.loads(
        _run(["runs", "--json", "--where", "dataset = digits and tag:preset"], pg_env).stdout
    )
    assert [r["id"] for r in listed] == [digits]
    table = _run(["runs", "--where", "not tag:preset"], pg_env).stdout
    assert "slow xor" in table and "fast digits" not in table
    bad = _run(["runs", "--where", "tag:preset and val_acc > 0.9"], pg_env, check=False)
    assert bad.returncode != 0
    assert '--where: unknown field "val_acc" at column 16' in bad.stderr
    bad = _run(["runs", "--where", "val_accuracy >"], pg_env, check=False)
    assert 'expected a value after ">" at column 15' in bad.stderr
    assert runs.count_runs(pg_db) == 2


def test_storage_thin_dry_run_then_thin_a_run_and_bad_input_named(home_env, tmp_path):
    run_id = _run(["train", "--preset", "xor", "--epochs", "60"], home_env).stdout.split()[-1]
    dry = _run(["storage", "thin", "--older-than", "0d", "--dry-run", "--every", "10"], home_env)
    assert f"run {run_id} 'xor': would keep" in dry.stdout and "would drop" in dry.stdout
    assert "1 run(s) to thin" in dry.stdout
    assert json.loads(_run(["show", run_id, "--json"], home_env).stdout)["thinned_at"] is None
    done = _run(["storage", "thin", run_id, "--every", "10", "--log-points", "3"], home_env)
    assert "VACUUM done" in done.stdout and "1 run(s) thinned" in done.stdout, done.stdout
    shown = json.loads(_run(["show", run_id, "--json"], home_env).stdout)
    assert shown["thinned_at"] and shown["thinning"]["policy"]["every"] == 10
    assert shown["epochs_recorded"] == 61  # every metrics row stays
    out = tmp_path / "thin.npz"
    _run(["export", run_id, str(out)], home_env)
    with np.load(out) as f:
        kept = f["tensor_epochs"].tolist()
        assert f["epochs"].tolist() == list(range(61))
        assert {0, 10, 20, 60} <= set(kept) and len(kept) < 61
        assert f["params/hidden_1/kernel"].shape[0] == len(kept)
        assert '"thinned_at"' in str(f["run"])
    listed = _run(["storage", "epochs", run_id], home_env).stdout.splitlines()
    assert (
        listed[0].startswith(f"run {run_id}: thinned")
        and f"tensors at {len(kept)} of 61" in listed[0]
    )
    assert listed[1].split() == [str(e) for e in kept]
    for args, message in (
        (["--older-than", "abc"], "--older-than: 'abc' is not an age from 0 to 36500 days"),
        ([run_id, "--every", "0"], "--every: must be a whole number from 1 to 1,000,000"),
        ([run_id, "--log-points", "-1"], "--log-points: must be a whole number from 0 to"),
        (["x1"], "RUN: 'x1' is not a run id"),
        (["999"], "RUN: run 999 does not exist"),
        ([], "give RUN ids or --older-than AGE"),
    ):
        bad = _run(["storage", "thin", *args], home_env, check=False)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)
    policy = _run(["storage", "policy", "--keep-days", "7", "--every", "5"], home_env).stdout
    assert "saved" in policy and "keep-days: 7" in policy and "every: 5" in policy
    shown = _run(["storage", "policy"], home_env).stdout
    assert "log-points: 20" in shown and "auto-hours: 0" in shown  # automatic rounds: off
    policy = _run(["storage", "policy", "--auto-hours", "24"], home_env).stdout
    assert "saved" in policy and "auto-hours: 24" in policy and "keep-days: 7" in policy
    bad = _run(["storage", "policy", "--auto-hours", "8761", "--every", "3"], home_env, check=False)
    assert bad.returncode == 2, bad.stderr
    assert "--auto-hours: must be a whole number from 0 to 8,760" in bad.stderr, bad.stderr
    shown = _run(["storage", "policy"], home_env).stdout  # nothing of the bad call was saved
    assert "auto-hours: 24" in shown and "every: 5" in shown
