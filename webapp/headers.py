"""Security headers on every response: a Content-Security-Policy with a per-request script
nonce, frame-ancestors 'none' (and X-Frame-Options DENY), Referrer-Policy, nosniff, and HSTS
when the request came over HTTPS.

The CSP was measured against every page in Chromium (tests/browser/test_csp.py): Dash's and
NetLens's inline scripts in the page's HTML get the nonce; every other script (component
bundles, plotly.js loaded by dcc.Graph) comes from this origin. No 'unsafe-eval' is needed.
Styles keep 'unsafe-inline': React renders `style` attributes and plotly.js adds <style>
elements at run time, neither of which can carry a nonce.
"""

from __future__ import annotations

import re
import secrets

import dash
import flask
from flask import g, request

SCRIPT_TAG = re.compile(r"<script(?![^>]*\bnonce=)")
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the lab are not ours


def nonce() -> str:
    """This request's script nonce (made on first use)."""
    value = g.get("netlens_csp_nonce")
    if value is None:
        value = g.netlens_csp_nonce = secrets.token_urlsafe(18)
    return value


def policy(script_nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{script_nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def add_nonces(html: str, script_nonce: str) -> str:
    """Every <script> tag of a page we render gets the nonce (inline ones need it)."""
    return SCRIPT_TAG.sub(f'<script nonce="{script_nonce}"', html)


def apply(response: flask.Response) -> flask.Response:
    headers = response.headers
    headers["Content-Security-Policy"] = policy(nonce())
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Content-Type-Options"] = "nosniff"
    if request.is_secure:  # over plain HTTP the header means nothing and is ignored
        headers["Strict-Transport-Security"] = HSTS
    return response


def install(app: dash.Dash) -> None:
    """The headers on every response, the nonce on every script of Dash's page HTML (wrapped
    before or after webapp/page_scripts.py, this sees the HTML Dash finally renders)."""
    app.server.after_request(apply)
    original = app.interpolate_index

    def interpolate_index(**kwargs):
        return add_nonces(original(**kwargs), nonce())

    app.interpolate_index = interpolate_index
