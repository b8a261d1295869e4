"""Uploads (issue 7): files sent by clients are size-limited, checked for their kind, stored
under server-generated names inside <data dir>/uploads/ and never read from a client's path;
`dataset.upload` resolves to the stored file, which the worker's loader reads."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import sys
from pathlib import Path

import flask
import numpy as np
import pytest

from netlens.storage import users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.storage.spec import SpecError, parse_spec
from netlens.storage.uploads import (
    PATHS_REFUSED,
    UploadError,
    UploadInfo,
    get_upload,
    list_uploads,
    resolve_spec_upload,
    save_upload,
    upload_path,
    uploads_dir,
)
from netlens.worker.datasets import DatasetError, load_dataset

CSV = b"x1,x2,label\n" + b"0,0,a\n0,1,b\n1,0,b\n1,1,a\n" * 5
STORED = re.compile(r"^[0-9a-f]{32}\.(csv|npz)$")
PASSWORD = "a long enough password"
LOCAL_OPERATOR = {"user_id": None, "is_admin": True}  # single-user mode, the CLI


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh NETLENS_HOME (data dir inside it) and its migrated SQLite database; the working
    directory is deep inside the temporary tree, so a relative '../' would land in it too."""
    home = tmp_path / "home"
    monkeypatch.setenv("NETLENS_HOME", str(home))
    monkeypatch.delenv("NETLENS_DATA_DIR", raising=False)
    monkeypatch.delenv("NETLENS_MAX_UPLOAD_MB", raising=False)
    cwd = tmp_path / "cwd" / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    settings = Settings(database_url=None, broker_url=None)
    assert settings.home == home and settings.max_upload_mb == 64
    db = Database.from_settings(settings)
    upgrade(db)
    yield {"settings": settings, "db": db, "root": tmp_path}
    db.dispose()


def tree(root: Path) -> set[str]:
    """Every file under root (relative), except the SQLite database and its journals."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("netlens.db")
    }


def fake_mnist(
    n_train: int = 40, n_test: int = 20, *, compressed: bool = False, **replace
) -> bytes:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": np.arange(n_test) % 10,
    }
    arrays.update(replace)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    out = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


# ---- names from clients never make paths ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../../escape.csv",
        "../../../../../../tmp/escape.csv",
        "/etc/passwd.csv",
        "/etc/../x.csv",
        "a\x00b.csv",
        "..\\..\\windows.csv",
        "C:\\Windows\\System32\\evil.csv",
        "sub/dir/ok.csv",
        "..",
        "",
    ],
)
def test_client_names_are_only_shown_the_file_goes_under_a_generated_name(site, name):
    settings, db, root = site["settings"], site["db"], site["root"]
    before = tree(root)
    if not name.lower().endswith(".csv"):  # no name left with a .csv ending: refused
        with pytest.raises(UploadError, match=r"^file: .* a csv upload must be named \*\.csv"):
            save_upload(db, settings, None, name, CSV, "csv")
        assert tree(root) == before and list_uploads(db) == []
        return
    info = save_upload(db, settings, None, name, CSV, "csv")
    assert STORED.match(info.stored_name) and info.stored_name.endswith(".csv")
    for bad in ("/", "\\", "\x00", ".."):
        assert bad not in info.original_name
    assert info.original_name.endswith(".csv")
    path = upload_path(settings, info)
    folder = (settings.resolved_data_dir / "uploads").resolve()
    assert path.parent == folder and path.read_bytes() == CSV
    assert tree(root) - before == {f"home/data/uploads/{info.stored_name}"}
    assert before <= tree(root)
    assert info.size == len(CSV) and info.sha256 == hashlib.sha256(CSV).hexdigest()
    assert get_upload(db, info.id) == info
    assert not Path("/etc/passwd.csv").exists() and not Path("/tmp/escape.csv").exists()


def test_absolute_path_without_an_allowed_extension_is_refused(site):
    before = tree(site["root"])
    with pytest.raises(UploadError, match=r"^file: 'passwd' is not a \.csv file"):
        save_upload(site["db"], site["settings"], None, "/etc/passwd", CSV, "csv")
    with pytest.raises(UploadError, match=r"^file: 'data\.txt' is not a \.npz file"):
        save_upload(site["db"], site["settings"], None, "data.txt", fake_mnist(), "mnist")
    with pytest.raises(UploadError, match=r"^kind: 'exe' is not one of csv, mnist"):
        save_upload(site["db"], site["settings"], None, "x.csv", CSV, "exe")
    assert tree(site["root"]) == before and list_uploads(site["db"]) == []


def test_long_names_are_cut_to_255_characters_and_each_upload_gets_its_own_file(site):
    a = save_upload(site["db"], site["settings"], None, "n" * 1000 + ".csv", CSV, "csv")
    b = save_upload(site["db"], site["settings"], None, "same.csv", CSV, "csv")
    assert len(a.original_name) == 255 and a.stored_name != b.stored_name
    assert {u.id for u in list_uploads(site["db"])} == {a.id, b.id}
    assert [p.name for p in uploads_dir(site["settings"]).iterdir()].count(a.stored_name) == 1
    assert not any(p.name.startswith(".incoming-") for p in uploads_dir(site["settings"]).iterdir())


def test_owner_is_recorded_and_lists_filter_by_owner(site):
    db = site["db"]
    alice = users.create_user(db, "alice", PASSWORD)
    mine = save_upload(db, site["settings"], alice.id, "mine.csv", CSV, "csv")
    other = save_upload(db, site["settings"], None, "other.csv", CSV, "csv")
    assert [u.id for u in list_uploads(db, owner_id=alice.id)] == [mine.id]
    assert [u.id for u in list_uploads(db)] == [other.id, mine.id]  # newest first
    assert get_upload(db, 999) is None


# ---- limits and content checks ----------------------------------------------------------------


def test_oversized_file_is_refused_naming_the_limit(site, monkeypatch):
    monkeypatch.setenv("NETLENS_MAX_UPLOAD_MB", "1")
    small = Settings(database_url=None, broker_url=None)
    assert small.max_upload_mb == 1 and small.max_upload_bytes == 2**20
    before = tree(site["root"])
    row = b"1,2,0\n"
    big = b"a,b,label\n" + row * (int(1.5 * 2**20) // len(row))
    with pytest.raises(UploadError) as exc:
        save_upload(site["db"], small, None, "big.csv", big, "csv")
    assert str(exc.value) == "file: 1.5 MB is over the 1 MB upload limit"
    assert tree(site["root"]) == before and list_uploads(site["db"]) == []
    rows = (2**20 - 10) // len(row)
    exact = b"a,b,label\n" + row * (rows - 1) + b"1" * (1 + 2**20 - 10 - rows * len(row)) + row[1:]
    assert len(exact) == 2**20
    assert save_upload(site["db"], small, None, "exact.csv", exact, "csv").size == 2**20
    with pytest.raises(UploadError, match="over the 1 MB upload limit"):
        save_upload(site["db"], small, None, "one-more.csv", exact + b"\n", "csv")


def test_an_npz_that_expands_past_its_limit_is_refused(site):
    small = Settings(
        home=site["settings"].home, database_url=None, broker_url=None, max_upload_mb=1
    )
    bomb = fake_mnist(
        compressed=True,
        x_train=np.zeros((12_000, 28, 28), np.uint8),
        y_train=np.zeros(12_000, np.int64),
    )
    assert len(bomb) < 2**20
    with pytest.raises(
        UploadError,
        match=r"^file: the \.npz holds 9\.\d MB uncompressed, over "
        r"the 8 MB limit \(8 × the upload limit\)",
    ):
        save_upload(site["db"], small, None, "bomb.npz", bomb, "mnist")


@pytest.mark.parametrize(
    ("kind", "name", "data", "message"),
    [
        (
            "csv",
            "e.csv",
            b"",
            r"^file: the file is empty \(0 bytes\); upload a file of 1 byte to 64 MB",
        ),
        ("csv", "bin.csv", b"\xff\xfe\x00\x01binary", r"^file: not UTF-8 text"),
        ("csv", "head.csv", b"a,b,label\n\n  \n", r"^file: a header but no data rows"),
        ("csv", "one.csv", b"label\n1\n2\n", r"^file: the header has 1 column; .* at least 2"),
        ("csv", "blank.csv", b"\n\n", r"^file: no header row"),
        ("mnist", "m.npz", CSV, r"^file: not an \.npz \(zip\) file"),
        (
            "mnist",
            "m.npz",
            fake_mnist(x_test=None),
            r"^file: the \.npz lacks the arrays \['x_test'\]",
        ),
        (
            "mnist",
            "m.npz",
            fake_mnist(y_train=np.array([object()] * 40)),
            r"^file: an array of the \.npz cannot be read",
        ),
        (
            "mnist",
            "m.npz",
            fake_mnist(x_train=np.zeros((40, 784), np.uint8)),
            r"^file: x_train is uint8 of shape \(40, 784\); it must be numbers of shape \(n, height",
        ),
        (
            "mnist",
            "m.npz",
            fake_mnist(y_train=np.zeros(39, np.int64)),
            r"^file: y_train is int64 of shape \(39,\); it must be 40 integer labels",
        ),
        (
            "mnist",
            "m.npz",
            fake_mnist(x_test=np.zeros((20, 14, 14), np.uint8)),
            r"^file: x_train \(40, 28, 28\) and x_test \(20, 14, 14\) must hold images of one size",
        ),
    ],
)
def test_wrong_content_is_refused_and_nothing_is_stored(site, kind, name, data, message):
    before = tree(site["root"])
    with pytest.raises(UploadError, match=message):
        save_upload(site["db"], site["settings"], None, name, data, kind)
    assert tree(site["root"]) == before and list_uploads(site["db"]) == []


def test_a_tampered_stored_name_never_leaves_the_uploads_folder(site):
    info = save_upload(site["db"], site["settings"], None, "ok.csv", CSV, "csv")
    for bad in ("../netlens.db", "/etc/passwd", "x/../../y.csv", "A" * 32 + ".csv"):
        forged = UploadInfo(**{**info.__dict__, "stored_name": bad})
        with pytest.raises(UploadError, match=r"^dataset\.upload: upload \d+ has an invalid"):
            upload_path(site["settings"], forged)


# ---- the spec: dataset.upload ---------------------------------------------------------------


def test_spec_dataset_upload_field():
    assert parse_spec({"dataset": {"name": "csv", "upload": 3}}).dataset.upload == 3
    with pytest.raises(
        SpecError,
        match=r"dataset\.path: a csv dataset needs the path of the "
        r"CSV file or an uploaded file \(dataset\.upload\)",
    ):
        parse_spec({"dataset": {"name": "csv"}})
    with pytest.raises(SpecError, match=r"dataset\.upload: dataset 'xor' reads no file"):
        parse_spec({"dataset": {"name": "xor", "upload": 3}})
    with pytest.raises(SpecError, match=r"dataset\.upload: 0 is out of range: must be at least 1"):
        parse_spec({"dataset": {"name": "csv", "upload": 0}})


def test_client_paths_are_refused_unless_allowed(site):
    db, settings = site["db"], site["settings"]
    spec = parse_spec({"dataset": {"name": "csv", "path": "/etc/passwd"}})
    with pytest.raises(UploadError) as exc:
        resolve_spec_upload(db, settings, spec, allow_paths=False, **LOCAL_OPERATOR)
    assert (
        str(exc.value)
        == PATHS_REFUSED
        == (
            "dataset.path: file paths are accepted only from the command line on the server; "
            "upload the file instead and use dataset.upload"
        )
    )
    assert (
        resolve_spec_upload(db, settings, spec, allow_paths=True, **LOCAL_OPERATOR) == spec
    )  # CLI, loopback
    mnist = parse_spec({"dataset": {"name": "mnist", "path": "/srv/x.npz"}})
    with pytest.raises(UploadError, match="accepted only from the command line"):
        resolve_spec_upload(db, settings, mnist, allow_paths=False, **LOCAL_OPERATOR)
    plain = parse_spec({"dataset": {"name": "mnist"}})  # the server's own data folder
    assert resolve_spec_upload(db, settings, plain, allow_paths=False, **LOCAL_OPERATOR) == plain


def test_csv_upload_resolves_inside_uploads_and_the_worker_loads_it(site):
    db, settings = site["db"], site["settings"]
    info = save_upload(db, settings, None, "../../table.csv", CSV, "csv")
    # a client's own path next to the upload is replaced by the server's stored file
    spec = parse_spec(
        {
            "dataset": {
                "name": "csv",
                "upload": info.id,
                "path": "/etc/passwd",
                "label_column": "label",
            },
            "recording": {"probe_size": 4},
        }
    )
    resolved = resolve_spec_upload(db, settings, spec, allow_paths=False, **LOCAL_OPERATOR)
    path = Path(resolved.dataset.path)
    assert path == upload_path(settings, info) and path.parent == uploads_dir(settings).resolve()
    assert resolved.dataset.upload == info.id and parse_spec(resolved.model_dump()) == resolved
    data = load_dataset(resolved, settings.resolved_data_dir)
    assert data.class_names == ["a", "b"] and len(data.x_train) + len(data.x_val) == 20
    assert data.source_sha256 == info.sha256 and data.source_path == str(path)


def test_a_worker_on_another_host_without_the_upload_says_to_share_the_data_folder(site, tmp_path):
    """The web app wrote the upload in its data folder; a worker on another machine with a
    data folder of its own does not have the file."""
    from netlens.worker.runner import load_run_data

    db, settings = site["db"], site["settings"]
    info = save_upload(db, settings, None, "table.csv", CSV, "csv")
    spec = parse_spec(
        {"dataset": {"name": "csv", "upload": info.id}, "recording": {"probe_size": 4}}
    )
    resolved = resolve_spec_upload(db, settings, spec, allow_paths=False, **LOCAL_OPERATOR)
    upload_path(settings, info).unlink()  # as a host without the web host's folder sees it
    with pytest.raises(DatasetError) as refused:
        load_run_data(db, 1, resolved, tmp_path / "worker-data")
    message = str(refused.value)
    assert message.startswith(f"dataset.upload: the file of upload {info.id} (")
    assert "mount one shared data folder at the same path" in message


def test_mnist_upload_resolves_for_mnist_and_fashion_mnist(site):
    db, settings = site["db"], site["settings"]
    info = save_upload(db, settings, None, "mnist.npz", fake_mnist(), "mnist")
    assert info.stored_name.endswith(".npz") and info.kind == "mnist"
    for name in ("mnist", "fashion-mnist"):
        spec = parse_spec(
            {
                "dataset": {"name": name, "upload": info.id, "classes": [1, 7]},
                "recording": {"probe_size": 4},
            }
        )
        resolved = resolve_spec_upload(db, settings, spec, allow_paths=False, **LOCAL_OPERATOR)
        data = load_dataset(resolved, settings.resolved_data_dir)
        assert data.image_shape == (28, 28) and data.classes == [1, 7]
        assert data.source_sha256 == info.sha256


def test_upload_must_exist_and_fit_the_dataset(site):
    db, settings = site["db"], site["settings"]
    table = save_upload(db, settings, None, "t.csv", CSV, "csv")
    images = save_upload(db, settings, None, "m.npz", fake_mnist(), "mnist")
    cases = [
        ({"name": "csv", "upload": 999}, r"^dataset\.upload: upload 999 does not exist$"),
        (
            {"name": "mnist", "upload": table.id},
            rf"^dataset\.upload: upload {table.id} is a csv file; dataset 'mnist' needs a "
            "mnist upload$",
        ),
        (
            {"name": "csv", "upload": images.id},
            rf"^dataset\.upload: upload {images.id} is a mnist file; dataset 'csv' needs a "
            "csv upload$",
        ),
    ]
    for dataset, message in cases:
        with pytest.raises(UploadError, match=message):
            resolve_spec_upload(
                db, settings, parse_spec({"dataset": dataset}), allow_paths=True, **LOCAL_OPERATOR
            )
    upload_path(settings, table).unlink()
    with pytest.raises(UploadError, match="the file of upload .* is missing"):
        resolve_spec_upload(
            db,
            settings,
            parse_spec({"dataset": {"name": "csv", "upload": table.id}}),
            allow_paths=True,
            **LOCAL_OPERATOR,
        )


# ---- the new-experiment page ----------------------------------------------------------------


def data_url(data: bytes, mime: str = "text/csv") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The real app with login required, and alice's logged-in test client."""
    from netlens.webapp.app import create_app

    home = tmp_path_factory.mktemp("uploads-web")
    settings = Settings(
        home=home, database_url=None, broker_url=None, auth="required", max_upload_mb=1
    )
    db = Database.from_settings(settings)
    upgrade(db)
    alice = users.create_user(db, "alice", PASSWORD)
    app = create_app(settings, db)
    client = app.server.test_client()
    client.get("/healthz")  # Dash builds its callback map on the first request
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"name": "alice", "password": PASSWORD, "csrf": csrf})
    yield {
        "app": app,
        "db": db,
        "settings": settings,
        "alice": alice,
        "client": client,
        "new": sys.modules["pages.new"],
    }
    db.dispose()


def call(team, function: str, inputs: dict, state: dict | None = None):
    """POST the callback as Dash's renderer would; the JSON answer's response."""
    app = team["app"]
    key, entry = next(
        (k, e)
        for k, e in app.callback_map.items()
        if "callback" in e and e["callback"].__name__ == function
    )
    state = state or {}

    def items(specs, values):
        return [
            {
                "id": s["id"],
                "property": s["property"],
                "value": values.get(f"{s['id']}.{s['property']}"),
            }
            for s in specs
        ]

    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = [{"id": p.rsplit(".", 1)[0], "property": p.rsplit(".", 1)[1]} for p in parts]
    body = {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": items(entry["inputs"], inputs),
        "state": items(entry["state"], state),
        "changedPropIds": list(inputs),
    }
    response = team["client"].post(
        "/_dash-update-component", json=body, headers={"Origin": "http://localhost"}
    )
    assert response.status_code == 200, response.text
    return json.loads(response.text)["response"]


def test_the_page_offers_an_upload_box_limited_to_the_setting(team):
    page = team["new"]
    with team["app"].server.app_context():
        box = page._upload_box()
    upload = next(c for c in box.children if getattr(c, "id", None) == page.UPLOAD)
    assert upload.max_size == 2**20 and "at most 1 MB" in str(box)
    with team["app"].server.test_request_context():
        assert page.show_upload("csv") == {"display": "block"}
        assert page.show_upload("fashion-mnist") == {"display": "block"}
        assert page.show_upload("xor") == {"display": "none"}


def post_upload(team, data: bytes, name: str, dataset: str = "csv", **headers):
    """POST /uploads as netlens-upload.js does (the raw file as the body)."""
    return team["client"].post(
        "/uploads",
        query_string={"name": name, "dataset": dataset},
        data=data,
        headers={
            "Origin": "http://localhost",
            "Content-Type": "application/octet-stream",
            **headers,
        },
    )


def test_uploading_through_the_page_stores_the_users_file_and_fills_the_spec(team):
    db, settings, root = team["db"], team["settings"], team["settings"].home
    before = tree(root)
    response = post_upload(team, CSV, "../../iris.csv")
    assert response.status_code == 201, response.text
    [info] = list_uploads(db)
    assert info.owner_id == team["alice"].id and info.original_name == "iris.csv"
    assert tree(root) - before == {f"data/uploads/{info.stored_name}"}
    assert response.get_json() == {
        "id": info.id,
        "message": f"uploaded iris.csv ({len(CSV)} B), id {info.id}",
    }
    # refused uploads: the message names the field and the limit; nothing is stored
    too_big = b"a,b,label\n" + b"1,2,0\n" * 200_000
    response = post_upload(team, too_big, "big.csv")
    assert response.status_code == 413
    assert response.get_json() == {"error": "file: over the 1 MB upload limit"}
    response = post_upload(team, b"\x89PNG\r\n", "x.png")
    assert response.status_code == 400 and "file: 'x.png' is not a .csv file" in response.text
    # a cross-site page cannot post a file into alice's account
    assert post_upload(team, CSV, "x.csv", Origin="https://evil.example").status_code == 403
    assert list_uploads(db) == [info] and tree(root) - before == {
        f"data/uploads/{info.stored_name}"
    }
    assert settings.max_upload_mb == 1


def test_callback_bodies_are_capped_far_below_the_upload_limit(team):
    """The upload no longer travels in a callback, so callback bodies are capped (2 MB by
    default) and a bigger one is refused before it is read, naming the limit."""
    body = json.dumps(
        {"output": "x", "inputs": [{"id": "a", "property": "b", "value": "x" * (3 * 2**20)}]}
    )
    response = team["client"].post(
        "/_dash-update-component",
        data=body,
        headers={"Origin": "http://localhost", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "over the 2,048 kB limit" in response.text and "NETLENS_MAX_REQUEST_KB" in response.text
    # no server callback takes the file's contents any more (the clientside one posts it)
    server_side = [e for e in team["app"].callback_map.values() if "callback" in e]
    assert len(server_side) > 20
    for entry in server_side:
        assert all(i["id"] != team["new"].UPLOAD for i in entry["inputs"] + entry["state"])


def test_a_team_server_refuses_client_paths_and_runs_uploads(team):
    page, db = team["new"], team["db"]
    info = save_upload(db, team["settings"], team["alice"].id, "t.csv", CSV, "csv")
    with team["app"].server.test_request_context():
        flask.g.netlens_actor = users.Actor.of(team["alice"])
        values = page.spec_to_form(
            parse_spec(
                {"dataset": {"name": "csv", "path": "/etc/passwd"}, "training": {"epochs": 5}}
            )
        )
        n = len(page.FIELDS)
        ids = [cid for cid, *_ in page.FIELDS]
        out = page.check(*values)
        assert out[ids.index("f-path")] is True
        assert "accepted only from the command line" in out[n + ids.index("f-path")]
        alert, target = page.submit(1, *values)
        assert "dataset.path: file paths are accepted only from the command line" in str(alert)
        assert target is dash_no_update()
        values[ids.index("f-upload")] = info.id
        out = page.check(*values)
        assert not any(out[:n]), [m for m in out[n : 2 * n] if m]
        # the drawing and the size estimate follow the uploaded file, not a guess
        hidden = [layer.units for layer in page.validate(values)[0].model.hidden]
        assert _sketch_sizes(out[2 * n + 1]) == [2, *hidden, 1]  # x1, x2; classes a, b: 1 out
        guess = page.estimate_recorded_bytes(page.validate(values)[0])  # 100 inputs, 10 classes
        assert f"{guess / 1024**2:,.1f} MiB" not in str(out[2 * n])
        # a sweep over the data file is refused (the upload is resolved once)
        assert all(
            o["value"] not in page.NOT_SWEPT_HERE for o in page.sweep_field_options("8 tanh", "")[0]
        )


def _sketch_sizes(figure) -> list[int]:
    """Units per layer as the architecture sketch labels them ("input<br>3", ...)."""
    import re as _re

    return [
        int(_re.search(r"<br>(\d+)", t.text).group(1))
        for t in figure.layout.annotations
        if t.text.startswith("<b>") and "<br>" in t.text
    ]


def dash_no_update():
    from dash import no_update

    return no_update


def test_only_the_owner_or_an_admin_may_use_an_upload(site):
    """Issue 13 point 4: ids are sequential, so another member's id must look missing."""
    db, settings = site["db"], site["settings"]
    alice = users.create_user(db, "alice", PASSWORD)
    bob = users.create_user(db, "bob", PASSWORD)
    mine = save_upload(db, settings, alice.id, "a.csv", CSV, "csv")
    operators = save_upload(db, settings, None, "o.csv", CSV, "csv")  # single-user mode, CLI
    spec = parse_spec({"dataset": {"name": "csv", "upload": mine.id}})
    as_alice = {"user_id": alice.id, "is_admin": False}
    as_bob = {"user_id": bob.id, "is_admin": False}
    assert resolve_spec_upload(db, settings, spec, allow_paths=False, **as_alice).dataset.path
    assert resolve_spec_upload(
        db, settings, spec, allow_paths=False, user_id=bob.id, is_admin=True
    ).dataset.path  # an admin
    missing = parse_spec({"dataset": {"name": "mnist", "upload": 999}})
    for upload_id in (mine.id, operators.id):
        theirs = parse_spec({"dataset": {"name": "mnist", "upload": upload_id}})
        with pytest.raises(UploadError) as refused:
            resolve_spec_upload(db, settings, theirs, allow_paths=False, **as_bob)
        with pytest.raises(UploadError) as absent:
            resolve_spec_upload(db, settings, missing, allow_paths=False, **as_bob)
        # same words, and not even the kind check (csv vs mnist) gives the upload away
        assert (
            str(refused.value).replace(str(upload_id), "N")
            == str(absent.value).replace("999", "N")
            == "dataset.upload: upload N does not exist"
        )
    with pytest.raises(UploadError, match="does not exist"):
        resolve_spec_upload(
            db,
            settings,
            parse_spec({"dataset": {"name": "csv", "upload": mine.id}}),
            allow_paths=False,
            user_id=None,
            is_admin=False,
        )
