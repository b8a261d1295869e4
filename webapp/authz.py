"""Authorization rules: every page, Dash callback, Flask route and API route has one.

The rules (weakest first):
- "public": no login (the health check, the login page);
- "member": any logged-in user (lab members read every run, and submit their own);
- "owner": any logged-in user, and the code itself checks on the server, with the run's
  owner read from the database, that the user owns the run or is an admin
  (`storage.users.require_run_owner`) before it cancels, retries, edits or deletes;
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


def rule(access: str) -> Callable[[F], F]:
    """Mark a callback (or any view function) with its authorization rule. Put it *under*
    `@callback(...)`, so that it runs first; Dash's wrapper copies the mark."""
    if access not in RULES:
        raise ValueError(f"access: {access!r} is not one of {RULES}")

    def mark(fn: F) -> F:
        setattr(fn, ATTRIBUTE, access)
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
