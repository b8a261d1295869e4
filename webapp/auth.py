"""Who is asking, and may they: the request guard in front of every route of the web process.

Every request is identified (a browser session cookie, or `Authorization: Bearer <token>`
under /api), then checked against its route's rule (webapp/authz.py): a Flask view's `@rule`
mark or ROUTE_RULES, a Dash page's `access`, a Dash callback's `@rule`. A route without a
rule is refused. Without an identity, pages redirect to /login and everything else answers
401, except the health check and the login page.

Single-user mode: when the web app listens only on the loopback address and NETLENS_AUTH is
not "required", nobody logs in and every request acts as the local operator (an admin).
Bound to any other address, login is required.

State-changing requests that carry the session cookie must come from this origin (Origin,
Sec-Fetch-Site or Referer, whichever the browser sent); callbacks must be JSON. The cookie is
HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS (or NETLENS_COOKIE_SECURE).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from datetime import timedelta
from html import escape
from urllib.parse import urlsplit

import dash
import flask
from flask import g, request

from netlens.storage.tokens import token_access
from netlens.storage.users import LOCAL, Actor, session_user
from netlens.webapp import callback_guard, context, headers, ownership
from netlens.webapp.authz import PAGES_CALLBACK_PREFIX, ROUTE_RULES, allows, rule, rule_of

SESSION_COOKIE = "netlens_session"
CSRF_COOKIE = "netlens_login_csrf"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
PAGE_ENDPOINTS = ("/", "/<path:path>")
CALLBACK_ENDPOINT = "/_dash-update-component"
log = logging.getLogger("netlens.auth")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def current_actor() -> Actor:
    """The user this request acts for (LOCAL in single-user mode). Only call it from code
    behind the guard: routes with a rule other than "public"."""
    actor = g.get("netlens_actor")
    if actor is None:
        flask.abort(401)
    return actor


def install(app: dash.Dash) -> None:
    server = app.server
    server.extensions["netlens_dash"] = app
    server.extensions["netlens_callbacks"] = callback_guard.Registry(app.callback_map)
    callback_guard.guard_page_layouts(dash.page_registry)
    server.before_request(_guard)
    headers.install(app)

    @server.route("/healthz")
    @rule("public")
    def netlens_health():
        db = context.current().db
        try:
            db.ping()
        except Exception:
            return flask.jsonify(status="error", database="unreachable"), 503
        return flask.jsonify(status="ok", database="ok")

    from netlens.webapp import login  # it imports this module's cookies and checks

    login.install(server)


# ---- the guard ----------------------------------------------------------------------------


def _identify() -> Actor | None:
    web = context.current()
    g.netlens_token_scope = None
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        found = web.identities.get("token", token, lambda: token_access(web.db, token))
        user, g.netlens_token_scope = found if found else (None, None)
    else:
        idle = timedelta(minutes=web.settings.session_idle_minutes)
        cookie = request.cookies.get(SESSION_COOKIE)
        user = web.identities.get("session", cookie, lambda: session_user(web.db, cookie, idle))
    if user is not None:
        return Actor.of(user)
    return None if web.auth_required else LOCAL


def _guard():
    actor = _identify()
    g.netlens_actor = actor
    endpoint = request.endpoint
    if endpoint is None:  # no such route: a 404 to those logged in, else no hint at all
        return None if actor else _unauthorized()
    access = route_access(endpoint)
    if request.method not in SAFE_METHODS and not _bearer_request():
        if not same_origin(missing_ok=SESSION_COOKIE not in request.cookies):
            return _refuse(403, "cross-origin request refused (or no Origin header)")
        if endpoint == CALLBACK_ENDPOINT and request.mimetype != "application/json":
            return _refuse(415, "callbacks take application/json only")
    if access == "public":
        return None
    if actor is None:
        return _unauthorized()
    if g.netlens_token_scope == "read" and request.method not in ("GET", "HEAD"):
        return _refuse(
            403,
            "token scope: this token is read-only (GET and HEAD); create a "
            "write token on the account page or with `netlens tokens create`",
        )
    if endpoint == CALLBACK_ENDPOINT:
        refusal = callback_refusal(request.get_json(silent=True), actor)
        return _refuse(*refusal) if refusal else None
    if endpoint in PAGE_ENDPOINTS:
        access = page_access(request.path)
    if not allows(access, logged_in=True, is_admin=actor.is_admin):
        return _refuse(*_access_refusal(access))
    if access == "owner" and not (request.method == "OPTIONS" and request.path.startswith("/api/")):
        # (an API OPTIONS runs no view: webapp/api.py answers it with the path's methods)
        refusal = ownership.route_refusal(
            flask.current_app.view_functions.get(endpoint), request.view_args, actor
        )
        if refusal:
            return _refuse(*refusal)
    return None


def _access_refusal(access: str | None) -> tuple[int, str]:
    if access is None:
        return 403, "this route has no authorization rule"
    return 403, "admins only" if access == "admin" else "not allowed"


def _bearer_request() -> bool:
    """API calls with a token carry no ambient credentials: CSRF cannot forge them."""
    return request.path.startswith("/api/") and "Authorization" in request.headers


def route_access(endpoint: str, server: flask.Flask | None = None) -> str | None:
    view = (server or flask.current_app).view_functions.get(endpoint)
    return rule_of(view) or ROUTE_RULES.get(endpoint)


def callback_refusal(body, actor: Actor) -> tuple[int, str] | None:
    """Why a /_dash-update-component body is refused (None: it may run). The body is bound by
    position to the callback it names (webapp/callback_guard.py): 400 when it does not fit;
    then the callback's rule (for the page-routing callback, that of the page at the declared
    pathname position, found as Dash finds it), then the run's owner (webapp/ownership.py)."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return 400, "a callback body is a JSON object with an output"
    spec = flask.current_app.extensions["netlens_callbacks"].get(body["output"])
    if spec is None or not allows(spec.access, logged_in=True, is_admin=actor.is_admin):
        return _access_refusal(spec.access if spec else None)
    try:
        bound = callback_guard.bind(spec, body)
        access = (
            _routed_page_access(bound)
            if spec.output.startswith(PAGES_CALLBACK_PREFIX)
            else spec.access
        )
    except callback_guard.BadCallback as exc:
        log.warning("callback %s refused (400): %s", body["output"][:200], exc)
        return 400, str(exc)
    if not allows(access, logged_in=True, is_admin=actor.is_admin):
        return _access_refusal(access)
    return ownership.callback_refusal(bound, actor)


def _routed_page_access(bound: callback_guard.Bound) -> str | None:
    """The rule of the page Dash's routing callback will render for these bound inputs."""
    from dash._pages import _path_to_page

    pathname = bound.values[bound.spec.position("_pages_location", "pathname")]
    if not isinstance(pathname, str):
        raise callback_guard.BadCallback("inputs: _pages_location.pathname must be a path")
    app = flask.current_app.extensions["netlens_dash"]
    try:
        page, _variables = _path_to_page(app.strip_relative_path(pathname))
    except Exception:  # Dash itself would fail on this path: refuse it before
        raise callback_guard.BadCallback("inputs: _pages_location.pathname: not a path") from None
    if not page:
        page = next((p for p in dash.page_registry.values() if p["path"] == "/404"), {})
    return page.get("access")


def page_access(path: str) -> str | None:
    """The `access` of the page that serves `path` (the 404 page's when none does)."""
    page = find_page(path)
    if page is None:
        page = next((p for p in dash.page_registry.values() if p["path"] == "/404"), None)
    return page.get("access") if page else None


def find_page(path: str) -> dict | None:
    path = "/" + path.strip("/")
    for page in dash.page_registry.values():
        template = page.get("path_template")
        if template:
            pattern = "^" + re.sub(r"<[^>]+>", "[^/]+", "/" + template.strip("/")) + "$"
            if re.match(pattern, path):
                return page
        elif "/" + page["path"].strip("/") == path:
            return page
    return None


def same_origin(missing_ok: bool = False) -> bool:
    """Whether the browser says this request comes from our own pages: every one of Origin,
    Sec-Fetch-Site and Referer that it sent must say so. A request that says nothing passes
    only when `missing_ok`: it carries no session cookie, or a form token of its own."""
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    referer = request.headers.get("Referer")
    if origin is None and site is None and referer is None:
        return missing_ok
    return (
        (origin is None or origin == request.host_url.rstrip("/"))
        and (site is None or site in ("same-origin", "none"))
        and (referer is None or urlsplit(referer).netloc == request.host)
    )


def _wants_html() -> bool:
    return (
        request.method == "GET"
        and request.endpoint in PAGE_ENDPOINTS
        and "text/html" in request.headers.get("Accept", "text/html")
    )


def _unauthorized():
    if _wants_html():
        target = request.full_path.rstrip("?")
        return flask.redirect("/login?next=" + _quote(target))
    return _refuse(401, "log in first (a session, or an API token: Authorization: Bearer ...)")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def _refuse(status: int, message: str):
    if request.path.startswith("/api/"):  # the API's error body (ApiError: webapp/openapi.py)
        response = flask.jsonify(error=message, fields=[])
    elif request.endpoint not in PAGE_ENDPOINTS:
        response = flask.jsonify(error=message)
    else:
        response = flask.make_response(
            _page("NetLens", f"<p>{escape(message)}</p><p><a href='/'>Home</a></p>")
        )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="netlens"'
    return response


def _page(title: str, body: str) -> str:
    """A self-contained page (no scripts or stylesheets to fetch before logging in)."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f6f8;
margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;color:#212529}}
form,main{{background:#fff;padding:2rem 2.2rem;border-radius:.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.12);width:20rem}}
h1{{font-size:1.5rem;margin:0 0 1.2rem}} label{{display:block;margin:.8rem 0 .25rem;font-size:.9rem}}
input{{width:100%;box-sizing:border-box;padding:.45rem .6rem;border:1px solid #ced4da;
border-radius:.3rem;font-size:1rem}}
button{{margin-top:1.3rem;width:100%;padding:.55rem;background:#0d6efd;color:#fff;border:0;
border-radius:.3rem;font-size:1rem;cursor:pointer}}
.error{{color:#b02a37;background:#f8d7da;padding:.5rem .7rem;border-radius:.3rem}}
.hint{{color:#555;font-size:.9rem}}
</style></head><body>{body}</body></html>"""
