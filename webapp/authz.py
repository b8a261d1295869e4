"""Authorization rules: every page, Dash callback, Flask route and API route has one.

The rules (weakest first):
- "public": no login (the health check, the login page);
- "member": any logged-in user (lab members read every run, and submit their own);
- "owner": the owner of the run (or an admin). `@rule("owner", run=...)` says where the run
  id is: a callback's input or state `(component_id, property)`, or an API route's URL
  parameter name; the guard reads the run's owner from the database
  (`storage.users.require_run_owner`) and refuses others with 403 before the code runs.
  `run=EACH` marks code that acts on several runs and checks each one itself;
- "admin": admins only.

Pages declare theirs in `dash.register_page(..., access=...)`; callbacks with the `@rule`
decorator placed under `@callback`; Flask routes in ROUTE_RULES by endpoint name. The
request guard (webapp/auth.py) refuses anything without a rule, and
tests/unit/test_authz_rules.py enumerates them all.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

RULES = ("public", "member", "owner", "admin")
ATTRIBUTE = "__netlens_rule__"
RUN_ATTRIBUTE = "__netlens_run__"
EACH = "each"  # run=EACH: the code checks the owner of each of several runs itself

# The declared type of values that callbacks receive, checked by the guard by position
# (webapp/callback_guard.py CHECKS): by property for Dash's own counters and paths, and by
# (component id, property) for what pages declare with declare_kind.
PROPERTY_KINDS = {
    "n_clicks": "count",
    "n_intervals": "count",
    "submit_n_clicks": "count",
    "pathname": "text",
    "search": "text",
    "href": "text",
    "active_tab": "text",
    "clickData": "object",
    "hoverData": "object",
    "getRowsRequest": "object",
    "selectedRows": "list",
    "filename": "text",
}
COMPONENT_KINDS: dict[tuple[str, str], str] = {
    ("sig-run-id", "data"): "id",
    ("group-id", "data"): "id",
    ("run-name", "value"): "text",
    ("run-tags", "value"): "text",
    ("run-notes", "value"): "long_text",
    ("runs-where", "value"): "text",
    ("runs-where-applied", "data"): "text",
    **{
        (slider, prop): "index"
        for slider in ("run-epoch", "cmp-epoch", "sig-epoch")
        for prop in ("value", "max")
    },
    ("cmp-epochs", "data"): "ints",
    ("cmp-runs", "data"): "ids",
    ("cmp-weight-layer", "value"): "text",
    ("cmp-weight-what", "value"): "text",
    ("sig-method", "value"): "text",
    ("admin-picked", "data"): "ids",
    ("admin-view", "data"): "object",
    ("admin-refresh", "data"): "count",
    ("admin-f-state", "value"): "texts",
    ("admin-pending-delete", "data"): "id_or_none",
    **{(f"admin-f-{name}", "value"): "text" for name in ("user", "queue", "time", "from", "to")},
    ("new-preset", "value"): "text",
    ("f-dataset", "value"): "text",
    **{(f"sweep-{kind}-{n}", "value"): "text" for kind in ("field", "values") for n in range(3)},
    ("overview-run-ids", "data"): "ids",
    ("overview-figure", "data"): "object",
    ("overview-brush", "data"): "list",
}
# The wildcard keys of pattern-matching ids: (the id's "type", key) -> kind.
PATTERN_KEY_KINDS: dict[tuple[str, str], str] = {
    ("admin-sort", "col"): "text",
    ("admin-page", "to"): "int",
    ("admin-page", "role"): "text",
    ("admin-pick", "run"): "id",
    ("admin-store-delete", "run"): "id",
    ("admin-user-toggle", "name"): "text",
    ("admin-user-toggle", "disable"): "flag",
    ("preset-launch", "name"): "text",
}

F = TypeVar("F", bound=Callable)

# Flask endpoints (request.endpoint) outside Dash's callback machinery.
ROUTE_RULES: dict[str, str] = {
    "netlens_health": "public",
    "netlens_login": "public",
    "netlens_logout": "member",
    "static": "member",
    # Dash's own routes: the page shell, layout, dependencies and scripts need a login;
    # /_dash-update-component is checked per callback (callback_rule below).
    "/": "member",
    "/<path:path>": "member",
    "_dash_assets.static": "member",
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": "member",
    "/_dash-layout": "member",
    "/_dash-dependencies": "member",
    "/_dash-update-component": "member",
    "/_reload-hash": "member",
    "/_favicon.ico": "member",
}

# Dash's built-in pages callback (Output _pages_content.children): the page's own rule is
# applied to the pathname it asks for.
PAGES_CALLBACK_PREFIX = ".._pages_content.children"


def rule(access: str, *, run: tuple[str, str] | str | None = None) -> Callable[[F], F]:
    """Mark a callback (or any view function) with its authorization rule. Put it *under*
    `@callback(...)`, so that it runs first; Dash's wrapper copies the mark. For "owner",
    `run` is where the run id is: `(component_id, property)` of a callback's input or state,
    or the name of an API route's URL parameter (or EACH)."""
    if access not in RULES:
        raise ValueError(f"access: {access!r} is not one of {RULES}")
    if (access == "owner") != (run is not None):
        raise ValueError("run: required with the owner rule, and only with it")
    if isinstance(run, tuple):
        declare_kind(*run, "id")

    def mark(fn: F) -> F:
        setattr(fn, ATTRIBUTE, access)
        setattr(fn, RUN_ATTRIBUTE, run)
        return fn

    return mark


def on_click(fn: F) -> F:
    """Run a button's callback only for a real click: a triggering n_clicks that is set.
    Dash may fire the callbacks of a page's buttons, with n_clicks None, when that page is
    reached without a reload (seen: opening a run from the home page's Launch fired the run
    page's Cancel). Put it under `@callback(...)`, above `@rule(...)`: the rule's mark is
    copied."""

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        import dash
        from dash.exceptions import PreventUpdate

        try:
            triggered = dash.ctx.triggered
        except Exception:  # called directly (tests), not by Dash: nothing to guard
            return fn(*args, **kwargs)
        if not any(t.get("value") for t in triggered or ()):
            raise PreventUpdate
        return fn(*args, **kwargs)

    guarded.__netlens_on_click__ = True  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def declare_kind(component_id: str, prop: str, kind: str) -> None:
    """Declare the type of a component property's value ("count", "id", "text", "flag"): the
    guard refuses a callback body whose value at that position has another (400)."""
    COMPONENT_KINDS[(component_id, prop)] = kind


def declared_kind(component_id: str | None, prop: str) -> str | None:
    return COMPONENT_KINDS.get((component_id, prop)) or PROPERTY_KINDS.get(prop)  # type: ignore[arg-type]


def pattern_key_kind(pattern_type: str | None, key: str) -> str:
    """The kind of a wildcard key's value ("text" unless declared)."""
    return PATTERN_KEY_KINDS.get((pattern_type, key), "text")  # type: ignore[arg-type]


def run_of(fn: Callable | None) -> tuple[str, str] | str | None:
    return getattr(fn, RUN_ATTRIBUTE, None) if fn is not None else None


def rule_of(fn: Callable | None) -> str | None:
    return getattr(fn, ATTRIBUTE, None) if fn is not None else None


def allows(access: str | None, *, logged_in: bool, is_admin: bool) -> bool:
    """Whether a request with this identity passes `access` (None: no rule, refused)."""
    if access == "public":
        return True
    if access in ("member", "owner"):
        return logged_in
    if access == "admin":
        return logged_in and is_admin
    return False
