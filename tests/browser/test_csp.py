"""Every page with the Content-Security-Policy on: no CSP violation, no console error, and
each page really drew (the policy is what Dash and plotly.js need, measured in Chromium)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.browser.conftest import REPO

COLLECT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
    e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));
"""


@pytest.fixture(scope="module")
def run_id(server) -> int:
    env = {**os.environ, "NETLENS_HOME": str(server.home), "NETLENS_DATABASE_URL": "",
           "NETLENS_BROKER_URL": "", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO),
           "NETLENS_ANALYZE_AFTER_TRAINING": "0"}
    result = subprocess.run([sys.executable, "-m", "netlens.cli", "train", "--preset", "xor",
                             "--epochs", "3", "--quiet"], env=env, cwd=server.home,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_every_page_runs_under_the_csp_without_violations(page, server, run_id):
    page.add_init_script(COLLECT)
    paths = ["/", "/runs", f"/runs/{run_id}", f"/runs/{run_id}/signatures",
             f"/compare?runs={run_id}", "/explore", "/new", "/account", "/admin",
             "/no/such/page"]
    for path in paths:
        response = page.goto(server.url + path)
        csp = response.headers["content-security-policy"]
        assert "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        page.wait_for_selector("#_pages_content > *", state="attached")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__csp") == [], path
        assert page.evaluate("!!document.querySelector('#_pages_content').innerText.trim()"), path
    # a page with graphs draws them (plotly.js itself runs under the policy)
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    assert page.evaluate("window.__csp") == []


def test_the_policy_is_enforced_an_injected_inline_script_is_refused(browser, server):
    """The check above would pass with no policy at all: prove Chromium enforces this one."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(COLLECT)
        page.goto(server.url + "/explore")
        page.wait_for_selector("#_pages_content > *", state="attached")
        page.evaluate("""() => { const s = document.createElement('script');
            s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
        page.wait_for_function("window.__csp.length > 0")
        assert page.evaluate("window.__ran") is None
        assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))
    finally:
        context.close()
