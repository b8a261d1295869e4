"""Issue 13 points 4 and 7 (and point 5's "no file contents in errors"), black-box against the
live team server: another member's upload answers exactly like a missing one (API submit, the
new-experiment page's submit, check and preview callbacks) and nothing changes; a run that
takes an upload marks it used; uploads go to POST /uploads, callback bodies are capped;
exports stream from GET /runs/<id>/export.npz and leave no file behind; refusals of a file
never quote its contents."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
import requests
from sqlalchemy import select

from netlens.storage.models import Upload
from netlens.storage.uploads import get_upload
from tests.security.conftest import Team

SECRET = "s3cr3t-row-7731"  # a cell of alice's file: must never reach bob, nor any error
CSV = (
    "x1,x2,label\n"
    + "".join(f"{i % 5},{i % 3},{'ab'[i % 2]}\n" for i in range(40))
    + f"1,1,{SECRET}\n"
).encode()
MISSING = 987_654


def upload(
    team: Team, session: requests.Session, data: bytes, name: str = "a.csv", dataset: str = "csv"
) -> requests.Response:
    """What netlens-upload.js sends: the raw file to POST /uploads."""
    return session.post(
        team.url + "/uploads",
        params={"name": name, "dataset": dataset},
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )


@pytest.fixture(scope="module")
def alices_upload(team) -> int:
    response = upload(team, team.browser("alice"), CSV)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def callback_body(
    team: Team, session: requests.Session, output: str, values: dict, clicked: bool = False
) -> dict:
    """A callback as the renderer sends it, built from the server's /_dash-dependencies:
    every input and state in declared order, values by component id (None otherwise)."""
    deps = session.get(team.url + "/_dash-dependencies", timeout=30).json()
    dep = next(d for d in deps if output in d["output"] and not d.get("clientside_function"))
    outputs = [
        dict(zip(("id", "property"), o.rsplit(".", 1), strict=True))
        for o in dep["output"].strip(".").split("...")
    ]

    def value(item):
        if item["property"] == "is_open":
            return False
        return values.get(item["id"], 1 if clicked and item["property"] == "n_clicks" else None)

    first = dep["inputs"][0]
    return {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": [{**i, "value": value(i)} for i in dep["inputs"]],
        "state": [{**s, "value": value(s)} for s in dep["state"]],
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def answer(team: Team, session, output: str, upload_id: int, clicked: bool = False) -> str:
    """The callback's response for a csv spec naming `upload_id`, with that id blanked out so
    that answers for different ids compare."""
    values = {"f-dataset": "csv", "f-upload": upload_id, "f-epochs": 5, "f-name": "u"}
    response = team.callback(session, callback_body(team, session, output, values, clicked))
    assert response.status_code == 200, response.text[:500]
    return json.dumps(response.json()["response"]).replace(f"upload {upload_id} ", "upload <ID> ")


def api_submit(team: Team, who: str, upload_id: int) -> requests.Response:
    spec = {"dataset": {"name": "csv", "upload": upload_id}, "training": {"epochs": 5}}
    return team.api(who, "POST", "/api/runs", json={"spec": spec})


def test_another_members_upload_is_refused_like_a_missing_one_over_the_api(team, alices_upload):
    before = team.snapshot()
    theirs, missing = api_submit(team, "bob", alices_upload), api_submit(team, "bob", MISSING)
    assert theirs.status_code == missing.status_code == 422, theirs.text
    assert theirs.json()["error"] == f"dataset.upload: upload {alices_upload} does not exist"
    assert theirs.text.replace(f"upload {alices_upload} ", "upload <ID> ") == missing.text.replace(
        f"upload {MISSING} ", "upload <ID> "
    )
    assert SECRET not in theirs.text
    assert team.snapshot() == before


@pytest.mark.parametrize(
    "output", ["new-preview.figure", "new-size.children", "new-feedback.children"]
)
def test_another_members_upload_is_refused_like_a_missing_one_in_the_page(
    team, alices_upload, output
):
    """The preview, the size/drawing check and Submit on /new, as bob's browser sends them."""
    bob = team.browser("bob")
    before = team.snapshot()
    clicked = output == "new-feedback.children"
    theirs = answer(team, bob, output, alices_upload, clicked)
    assert theirs == answer(team, bob, output, MISSING, clicked)
    assert "does not exist" in theirs and SECRET not in theirs and "x1" not in theirs
    assert team.snapshot() == before
    if not clicked:  # the owner's own request gets through (the preview draws her rows)
        assert "does not exist" not in answer(team, team.browser("alice"), output, alices_upload)


def test_an_admin_may_use_it_and_a_run_that_takes_it_marks_it_used(team, alices_upload):
    assert get_upload(team.db, alices_upload).owner_id == team.people["alice"].id
    with team.db.session() as s:
        assert s.scalar(select(Upload.used_at).where(Upload.id == alices_upload)) is None
    response = api_submit(team, "alice", alices_upload)
    assert response.status_code == 201, response.text
    with team.db.session() as s:
        assert s.scalar(select(Upload.used_at).where(Upload.id == alices_upload)) is not None
    by_root = api_submit(team, "root", alices_upload)  # an admin may use anyone's upload
    assert by_root.status_code == 201, by_root.text
    for who, run in (("alice", response), ("root", by_root)):  # leave no queued work behind
        team.api(who, "POST", f"/api/runs/{run.json()['id']}/cancel")


def test_callback_bodies_are_capped_and_uploads_do_not_use_them(team):
    bob = team.browser("bob")
    before = team.snapshot()
    huge = {
        "output": "new-preview.figure",
        "outputs": {"id": "new-preview", "property": "figure"},
        "inputs": [{"id": "f-dataset", "property": "value", "value": "x" * (3 * 2**20)}],
        "state": [],
        "changedPropIds": ["f-dataset.value"],
    }
    response = team.callback(bob, huge)
    assert response.status_code == 413
    assert "over the 2,048 kB limit" in response.text
    assert team.snapshot() == before


def test_refusals_of_a_file_never_quote_its_contents(team):
    alice = team.browser("alice")
    before = team.snapshot()
    bad_utf8 = upload(team, alice, b"a,b\n" + SECRET.encode() + b",\xff\n")
    assert bad_utf8.status_code == 400 and bad_utf8.json()["error"].startswith(
        "file: not UTF-8 text"
    )
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            header = f"{{'descr': '<u1', 'shape': ({SECRET!r},)}}".encode()
            archive.writestr(
                key + ".npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
            )
    bad_npz = upload(team, alice, npz.getvalue(), "m.npz", "mnist")
    assert bad_npz.status_code == 400 and "cannot be read" in bad_npz.json()["error"]
    for response in (bad_utf8, bad_npz):
        assert SECRET not in response.text
    assert team.snapshot() == before
    # a file the upload check accepts but the loader refuses: the preview names the row
    table = upload(team, alice, b"x1,x2,label\n1,2,a\n3," + SECRET.encode() + b",b\n")
    assert table.status_code == 201
    said = answer(team, alice, "new-preview.figure", table.json()["id"])
    assert re.search(r"column 2, row 2 \(line 3\) is not a finite number", said), said
    assert SECRET not in said


def test_export_is_a_plain_streamed_route_that_leaves_no_file(team, trained_run):
    bob = team.browser("bob")
    page = bob.get(f"{team.url}/runs/{trained_run}/export.npz", timeout=60)
    assert page.status_code == 200, page.text[:300]
    assert f'filename="run{trained_run}.npz"' in page.headers["Content-Disposition"]
    assert int(page.headers["Content-Length"]) == len(page.content)
    with np.load(io.BytesIO(page.content), allow_pickle=False) as npz:
        assert list(npz["epochs"]) == [0, 1, 2, 3] and "params/hidden_1/kernel" in npz.files
    assert bob.get(f"{team.url}/runs/{MISSING}/export.npz", timeout=30).status_code == 404
    outsider = requests.get(
        f"{team.url}/runs/{trained_run}/export.npz", timeout=30, allow_redirects=False
    )
    assert outsider.status_code in (302, 401) and b"NUMPY" not in outsider.content
    assert list((team.home / "tmp").iterdir()) == []  # the server's TMPDIR
    # the run page's Export is a link to it, not a callback that carries the file
    deps = bob.get(team.url + "/_dash-dependencies", timeout=30).json()
    assert not any("run-download" in d["output"] for d in deps)
