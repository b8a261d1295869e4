"""Ownership by default: the guard checks the owner of the run a request acts on.

A callback or API route marked `@rule("owner", run=...)` names where its run id is (a
callback's input or state, an API route's URL parameter). The guard reads that value by
position, checks its type and the run's owner in the database (admins pass), and refuses
others with 403 before the code runs, so no callback or route has to remember the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netlens.storage import runs
from netlens.storage.models import MAX_ID
from netlens.storage.users import Actor, Forbidden, require_run_owner
from netlens.webapp import context
from netlens.webapp.authz import run_of
from netlens.webapp.callback_guard import Bound

Refusal = tuple[int, str]


def run_refusal(run_id: Any, actor: Actor) -> Refusal | None:
    """403 unless `actor` owns run `run_id` or is an admin; 400 for an id that is not one; 404
    for a run that does not exist."""
    if not isinstance(run_id, int) or isinstance(run_id, bool) or not 1 <= run_id <= MAX_ID:
        return 400, "run_id: expected a run id (a positive integer)"
    try:
        require_run_owner(context.current().db, actor, run_id)
    except runs.RunNotFound:
        return 404, f"run {run_id} does not exist"
    except Forbidden as exc:
        return 403, str(exc)
    return None


def callback_refusal(bound: Bound, actor: Actor) -> Refusal | None:
    spec = bound.spec
    if spec.run_at is None:
        return None
    if spec.is_on_click and not any(bound.triggered):
        return None  # not a real click: the callback itself does nothing (authz.on_click)
    return run_refusal(bound.values[spec.run_at], actor)


def route_refusal(view: Callable | None, view_args: dict | None, actor: Actor) -> Refusal | None:
    """For an API route marked `@rule("owner", run="<URL parameter>")`."""
    where = run_of(view)
    if not isinstance(where, str) or where == "each":
        return None
    return run_refusal((view_args or {}).get(where), actor)
