"""Every page with the Content-Security-Policy enforced (the other browser tests bypass it
for Playwright's eval-compiled predicates): no CSP violation, no console error, and each page
really drew; and an injected inline script is refused, so the policy is live."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.browser.conftest import REPO

COLLECT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));
"""


@pytest.fixture(scope="module")
def run_id(server) -> int:
    env = {
        **os.environ,
        "NETLENS_HOME": str(server.home),
        "NETLENS_DATABASE_URL": "",
        "NETLENS_BROKER_URL": "",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(REPO),
        "NETLENS_ANALYZE_AFTER_TRAINING": "0",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netlens.cli",
            "train",
            "--preset",
            "xor",
            "--epochs",
            "3",
            "--quiet",
        ],
        env=env,
        cwd=server.home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


@pytest.fixture
def strict_page(browser):
    """A page with the CSP enforced; console errors and page errors collected."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.problems = []
    page.on(
        "console",
        lambda m: page.problems.append(f"console: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
    page.add_init_script(COLLECT)
    yield page
    context.close()


def poll(page, expression: str, timeout_s: float = 30) -> None:
    """Wait for `expression` (evaluated through the DevTools protocol, which the page's CSP
    does not govern; wait_for_function would eval it inside the page)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, expression
        time.sleep(0.1)


def test_every_page_runs_under_the_csp_without_violations(strict_page, server, run_id):
    page = strict_page
    paths = [
        "/",
        "/runs",
        f"/runs/{run_id}",
        f"/runs/{run_id}/signatures",
        f"/compare?runs={run_id}",
        "/explore",
        "/new",
        "/account",
        "/admin",
        "/no/such/page",
    ]
    for path in paths:
        response = page.goto(server.url + path)
        csp = response.headers["content-security-policy"]
        assert "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        page.wait_for_selector("#_pages_content > *", state="attached")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], path
        assert page.evaluate("!!document.querySelector('#_pages_content').innerText.trim()"), path
    page.goto(f"{server.url}/runs/{run_id}")  # graphs draw: plotly.js runs under the policy
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    assert page.evaluate("window.__csp") == [] and page.problems == []


def test_the_policy_is_enforced_an_injected_inline_script_is_refused(strict_page, server):
    page = strict_page
    page.goto(server.url + "/explore")
    page.wait_for_selector("#_pages_content > *", state="attached")
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
    poll(page, "window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None
    assert [v for v in page.evaluate("window.__csp") if v.startswith("script-src")]
    assert "inline" in " ".join(page.evaluate("window.__csp"))
