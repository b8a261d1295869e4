"""Issue 13 point 1, black-box: a member posts crafted bodies to /_dash-update-component of the
live team server. The page-routing callback with its inputs swapped (the attack that showed a
member the admin page) and other bodies that do not fit their callback answer 400, show no
admin content, and change nothing in the database."""

from __future__ import annotations

import pytest
import requests

ROUTER = ".._pages_content.children..._pages_store.data.."
ROUTER_OUTPUTS = [
    {"id": "_pages_content", "property": "children"},
    {"id": "_pages_store", "property": "data"},
]
# what only the admin page shows: its title, its tables, the admin's flags per user
ADMIN_MARKERS = (
    "Admin: the job queue",
    "admin-page",
    "admin-users",
    "admin-workers",
    "admin-storage",
)


def routing(pathname, search="", *, swapped: bool = False) -> dict:
    inputs = [
        {"id": "_pages_location", "property": "pathname", "value": pathname},
        {"id": "_pages_location", "property": "search", "value": search},
    ]
    return {
        "output": ROUTER,
        "outputs": ROUTER_OUTPUTS,
        "state": [],
        "inputs": inputs[::-1] if swapped else inputs,
        "changedPropIds": ["_pages_location.pathname"],
    }


def assert_no_admin_content(response: requests.Response) -> None:
    assert response.status_code < 500, response.text[:300]
    for marker in ADMIN_MARKERS:
        assert marker not in response.text, marker


def test_the_swapped_routing_inputs_of_the_issue_are_refused(team):
    bob = team.browser("bob")
    before = team.snapshot()
    # the exact body of the report: search "/admin" first, then pathname "/"
    attack = {
        "output": ROUTER,
        "outputs": ROUTER_OUTPUTS,
        "state": [],
        "changedPropIds": ["_pages_location.pathname"],
        "inputs": [
            {"id": "_pages_location", "property": "search", "value": "/admin"},
            {"id": "_pages_location", "property": "pathname", "value": "/"},
        ],
    }
    response = team.callback(bob, attack)
    assert response.status_code == 400, response.text
    assert "inputs[0]" in response.json()["error"]
    assert_no_admin_content(response)
    assert team.callback(bob, routing("/admin")).status_code == 403
    assert team.snapshot() == before
    # the same body in the declared order serves the admin page to an admin (the control)
    root = team.browser("root")
    assert "Admin: the job queue" in team.callback(root, routing("/admin")).text


@pytest.mark.parametrize(
    "pathname",
    [
        "/admin",
        "admin",
        "//admin",
        "/admin/",
        "/./admin",
        "/runs/../admin",
        "/ADMIN",
        "/%61dmin",
        " /admin",
        None,
        7,
        ["/admin"],
        {"p": "/admin"},
    ],
)
def test_no_spelling_of_the_admin_path_shows_a_member_the_admin_page(team, pathname):
    bob = team.browser("bob")
    for search in ("", "?x=1&x=2", None, "/admin"):
        for swapped in (False, True):
            response = team.callback(bob, routing(pathname, search, swapped=swapped))
            assert response.status_code in (200, 204, 400, 403), response.text[:300]
            assert_no_admin_content(response)


def test_bodies_that_do_not_fit_their_callback_are_400(team, trained_run):
    bob = team.browser("bob")
    before = team.snapshot()
    good = routing("/runs")
    extra = {"id": "_pages_location", "property": "hash", "value": "x"}
    cases = {
        "duplicated": {**good, "inputs": good["inputs"] + good["inputs"][:1]},
        "missing": {**good, "inputs": good["inputs"][:1]},
        "extra": {**good, "inputs": good["inputs"] + [extra]},
        "extra state": {**good, "state": [extra]},
        "other outputs": {
            **good,
            "outputs": [{"id": "admin-users", "property": "children"}, ROUTER_OUTPUTS[1]],
        },
        "one output": {**good, "outputs": ROUTER_OUTPUTS[0]},
        "not a list": {**good, "inputs": {"pathname": "/admin"}},
        "unknown trigger": {**good, "changedPropIds": ["admin-tick.n_intervals"]},
        "not an object": [good],
    }
    for name, body in cases.items():
        response = team.callback(bob, body)
        assert response.status_code == 400, (name, response.text[:300])
        assert_no_admin_content(response)
    # a run id that is not an id, where the run page's label callback expects one
    label = {
        "output": "run-epoch-label.children",
        "outputs": {"id": "run-epoch-label", "property": "children"},
        "inputs": [{"id": "run-epoch", "property": "value", "value": 0}],
        "state": [{"id": "run-id", "property": "data", "value": None}],
        "changedPropIds": ["run-epoch.value"],
    }
    for bad in ("1; drop table runs", {"$gt": 0}, [trained_run], 10**40, True, 1.5):
        label["state"][0]["value"] = bad
        response = team.callback(bob, label)
        assert response.status_code == 400 and "run-id.data" in response.text, bad
    label["state"][0]["value"] = trained_run
    assert team.callback(bob, label).status_code == 200  # the control: a real id is served
    assert team.snapshot() == before
