"""The login and logout routes: the throttled password check, a fresh session id on every
login, and the only `next` targets a login redirects to (paths on this site)."""

from __future__ import annotations

import secrets
import unicodedata
from html import escape
from urllib.parse import unquote, urlsplit

import flask
from flask import request

from netlens.storage import throttle
from netlens.storage.users import (
    SESSION_TTL,
    AuthFailed,
    RateLimited,
    authenticate,
    count_users,
    create_session,
    end_session,
)
from netlens.webapp import context
from netlens.webapp.auth import CSRF_COOKIE, SESSION_COOKIE, _page, same_origin
from netlens.webapp.authz import rule

MAX_NEXT = 2048  # longer targets are not links a page of ours made


def install(server: flask.Flask) -> None:
    @server.route("/login", methods=["GET", "POST"])
    @rule("public")
    def netlens_login():
        return _login()

    @server.route("/logout", methods=["POST"])
    @rule("member")
    def netlens_logout():
        end_session(context.current().db, request.cookies.get(SESSION_COOKIE))
        response = flask.redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


# ---- where a login may send the browser -----------------------------------------------------


def _clean(target: str) -> str:
    """What a browser makes of a URL: control characters dropped, backslashes as slashes."""
    kept = (ch for ch in target if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    return "".join(kept).replace("\\", "/")


def _is_local_path(target: str) -> bool:
    parts = urlsplit(target)
    return (
        target.startswith("/")
        and not target.startswith("//")
        and not parts.scheme
        and not parts.netloc
    )


def safe_next(target: object) -> str:
    """`target` when it is a path on this site, else "/". Checked as a browser would read it
    and again after percent-decoding (until stable), so that no form names another host."""
    if not isinstance(target, str) or not target or len(target) > MAX_NEXT:
        return "/"
    cleaned = _clean(target)
    form = cleaned
    for _ in range(4):
        if not _is_local_path(form):
            return "/"
        decoded = _clean(unquote(form))
        if decoded == form:
            return cleaned
        form = decoded
    return "/"  # still changing after 4 decodings: nothing a page of ours wrote


# ---- the login form -----------------------------------------------------------------------


def _cookie_secure() -> bool:
    setting = context.current().settings.cookie_secure
    return request.is_secure if setting is None else setting


def _check_login():
    """(user, error, status, retry_after) for the posted form."""
    web = context.current()
    token = request.cookies.get(CSRF_COOKIE)
    # the CSRF cookie and field guard the form; a missing Origin alone is no reason to refuse
    if (
        not same_origin(missing_ok=True)
        or not token
        or not secrets.compare_digest(token, request.form.get("csrf", ""))
    ):
        return None, "The form expired or came from another site; try again.", 400, 0
    try:
        user = authenticate(
            web.db,
            request.form.get("name", "")[:80],
            request.form.get("password", ""),
            request.remote_addr or "?",
            policy=throttle.Policy.from_settings(web.settings),
        )
    except RateLimited as exc:
        return (
            None,
            f"Too many failed logins: try again in {exc.retry_after_s} s.",
            429,
            exc.retry_after_s,
        )
    except AuthFailed:
        return None, "Wrong user name or password.", 401, 0
    return user, "", 200, 0


def _logged_in(user, target: str):
    """Redirect with a new session; the session this browser had before ends (fixation)."""
    db = context.current().db
    end_session(db, request.cookies.get(SESSION_COOKIE))
    response = flask.redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        create_session(db, user.id),
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_cookie_secure(),
    )
    response.delete_cookie(CSRF_COOKIE, path="/login")
    return response


def _login():
    web = context.current()
    target = safe_next(request.values.get("next"))
    if not web.auth_required:
        return flask.redirect(target)
    error, status, retry_after, name = "", 200, 0, ""
    if request.method == "POST":
        name = request.form.get("name", "")[:80]
        user, error, status, retry_after = _check_login()
        if user is not None:
            return _logged_in(user, target)
    csrf = secrets.token_urlsafe(24)
    response = flask.make_response(
        _page("Log in · NetLens", _form(error, name, target, csrf)), status
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=_cookie_secure(),
    )
    response.headers["Cache-Control"] = "no-store"
    if status == 429:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _form(error: str, name: str, target: str, csrf: str) -> str:
    hint = (
        ""
        if count_users(context.current().db)
        else "<p class='hint'>No accounts yet: on the server, run "
        "<code>netlens users add NAME --admin</code>.</p>"
    )
    return f"""
<form method="post" action="/login">
  <h1>◉ NetLens</h1>
  {f'<p class="error" role="alert">{escape(error)}</p>' if error else ""}{hint}
  <label for="name">User name</label>
  <input id="name" name="name" autocomplete="username" value="{escape(name)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <input type="hidden" name="csrf" value="{csrf}">
  <input type="hidden" name="next" value="{escape(target)}">
  <button type="submit">Log in</button>
</form>"""
