"""Links to exactly what you see (issue 17): the run, signatures and compare pages open on the
tab and epoch their URL names, write every change back into the URL without a reload, go back
with the browser, ignore junk in the query, and copy their link. Uses the XOR runs that
test_compare.py reads too (tests/browser/conftest.py `three_runs`)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from netlens.storage import runs
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

ACTIVE_TAB = "(sel) => document.querySelector(sel + ' .nav-link.active')?.innerText.trim()"


def _query(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


# Generous waits: these tests are about which state a URL gives and which URL a state gives,
# not speed. On a loaded 2-core CI machine one tab switch queues behind the figures of the
# previous state (10 s was once not enough).
WAIT_MS = 45_000


def _wait_label(page, label_id: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.getElementById(s)?.innerText.trim().startsWith(t)",
        arg=[label_id, text],
        timeout=WAIT_MS,
    )


def _wait_tab(page, tabs_id: str, label: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector('#' + s + ' .nav-link.active')?.innerText.trim() === t",
        arg=[tabs_id, label],
        timeout=WAIT_MS,
    )


# Dash's callbacks as the page sent them: each request's outputs, what changed, when it was
# sent and answered, and the start of its answer; a failed wait prints the last of them, so a
# race on a loaded CI machine can be read from the report. Also counts what is in flight.
CALLBACK_LOG = """
(() => {
  const log = [];
  window.__netlensCallbacks = log;
  window.__netlensInFlight = 0;
  const send = window.fetch;
  window.fetch = async function (url, options) {
    if (!String(url).includes('_dash-update-component')) return send.apply(this, arguments);
    let body = {};
    try { body = JSON.parse(String(options && options.body)); } catch (e) {}
    const row = {out: String(body.output || '').slice(0, 70),
                 changed: (body.changedPropIds || []).join(','),
                 sent: Math.round(performance.now()), url: location.search};
    log.push(row);
    window.__netlensInFlight += 1;
    try {
      const response = await send.apply(this, arguments);
      row.answer = (await response.clone().text()).slice(0, 120);
      return response;
    } finally {
      row.done = Math.round(performance.now());
      window.__netlensInFlight -= 1;
    }
  };
})();
"""


def _callbacks(page, last: int = 40) -> str:
    rows = page.evaluate(f"(window.__netlensCallbacks || []).slice(-{last})")
    return "\n".join(
        f"  {r.get('sent')}-{r.get('done', '...')} [{r.get('url')}] {r.get('out')} "
        f"<- {r.get('changed')}: {r.get('answer', '')}"
        for r in rows
    )


def _settle(page) -> None:
    """Until no callback of the page is in flight (twice in a row, 150 ms apart): the next
    step then acts on the page the last one left, not on one a late answer will still change
    (a user clicks seconds apart; this test acts within milliseconds)."""
    quiet = 0
    for _ in range(WAIT_MS // 150):
        busy = page.evaluate("window.__netlensInFlight || 0")
        quiet = quiet + 1 if busy == 0 else 0
        if quiet == 2:
            return
        page.wait_for_timeout(150)
    raise AssertionError("callbacks still in flight after 45 s:\n" + _callbacks(page))


def _wait_query(page, **expected: str | None) -> None:
    """Until the page's URL says `expected` (None: the name is absent)."""
    for _ in range(WAIT_MS // 100):
        query = _query(page)
        if all(query.get(k) == v for k, v in expected.items()):
            return
        page.wait_for_timeout(100)
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.nav-link.active')].map(e => e.innerText.trim())"
    )
    raise AssertionError(
        f"the URL never said {expected}: {page.url} (active tabs: {shown}); the last callbacks "
        f"(ms since the page opened, the URL when sent, outputs <- inputs: answer):\n"
        + _callbacks(page)
    )


@pytest.fixture
def page(page):
    """The browser fixture's page, logging Dash's callbacks from its first script on."""
    page.add_init_script(CALLBACK_LOG)
    return page


def _click_tab(page, tabs_id: str, label: str) -> None:
    """Click a tab once the page has no callback in flight (Dash marks the components it is
    updating with data-dash-is-loading), and see it become the active one.

    Known issue: after the whole browser suite (a busy server and worker), a click on the run
    page right after it opened was sometimes lost (the tab stayed as the link set it, also
    after 45 s; never seen in isolation or on the other pages). The click is repeated up to
    twice, and a repeat is reported on stdout, so that this test checks what it is about (the
    URL follows the page) while the lost click stays visible."""
    tab = page.locator(f"#{tabs_id}").get_by_role("tab", name=label, exact=True)
    for attempt in range(3):
        page.wait_for_function(
            "() => !document.querySelector('[data-dash-is-loading=\"true\"]')",
            timeout=WAIT_MS,
        )
        tab.click()
        try:
            page.wait_for_function(
                "([s, t]) => document.querySelector('#' + s + ' .nav-link.active')"
                "?.innerText.trim() === t",
                arg=[tabs_id, label],
                timeout=10_000,
            )
            return
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: click again
            print(f"click on tab {label!r} of #{tabs_id} lost (attempt {attempt + 1})")
    _wait_tab(page, tabs_id, label)


def _mark_window(page) -> None:
    page.evaluate("window.__netlensNoReload = true")


def _not_reloaded(page) -> bool:
    return page.evaluate("window.__netlensNoReload === true")


def test_a_run_link_opens_its_tab_and_epoch_and_the_url_follows_the_page(
    page, server, web_db, three_runs
):
    run_id = three_runs[0]
    epochs = runs.recorded_epoch_numbers(web_db, run_id)
    wanted = epochs[len(epochs) // 2]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(f"{server.url}/runs/{run_id}?tab=network&epoch={wanted}")
    _wait_tab(page, "run-tabs", "Network graph")
    _wait_label(page, "run-epoch-label", f"epoch {wanted}")
    page.wait_for_function(
        "(e) => document.querySelector('#fig-network .js-plotly-plot')?.layout?.title?.text"
        "?.startsWith('epoch ' + e + ' ·')",
        arg=wanted,
    )
    shot(page, "url-state-run-network")
    _mark_window(page)

    _click_tab(page, "run-tabs", "Parameters")
    _wait_query(page, tab="params", epoch=str(wanted))
    # back to the URL Dash's router rendered: the page's own restore callback sets the tab
    _settle(page)
    page.go_back()
    _wait_tab(page, "run-tabs", "Network graph")
    _settle(page)
    page.go_forward()  # another URL: Dash's router renders the page from it
    _wait_tab(page, "run-tabs", "Parameters")
    _settle(page)
    page.locator("#run-epoch [role=slider]").focus()
    page.keyboard.press("ArrowLeft")
    before = epochs[epochs.index(wanted) - 1]
    _wait_label(page, "run-epoch-label", f"epoch {before}")
    _wait_query(page, tab="params", epoch=str(before))
    assert _not_reloaded(page)

    page.locator("#run-copy-link").click()
    page.wait_for_function(
        "document.querySelector('#run-copy-link').innerText.includes('Link copied')"
    )
    assert page.evaluate("navigator.clipboard.readText()") == page.url

    _settle(page)
    page.go_back()  # the tab change, at the epoch of the link
    _wait_query(page, tab="params", epoch=str(wanted))
    _wait_label(page, "run-epoch-label", f"epoch {wanted}")
    _wait_tab(page, "run-tabs", "Parameters")
    _settle(page)
    page.go_back()  # the link as it was opened
    _wait_tab(page, "run-tabs", "Network graph")
    _wait_label(page, "run-epoch-label", f"epoch {wanted}")
    assert _query(page) == {"tab": "network", "epoch": str(wanted)}
    _settle(page)
    page.go_forward()
    _wait_tab(page, "run-tabs", "Parameters")
    assert _not_reloaded(page)


def test_junk_in_the_query_opens_the_default_pages(page, server, web_db, three_runs):
    """Unknown tabs, epochs out of range, non-numbers: the default view, no error (the page
    fixture fails the test on a console error or a 5xx)."""
    run_id = three_runs[1]
    last = runs.recorded_epoch_numbers(web_db, run_id)[-1]
    junk = "tab=%3Cscript%3E&epoch=1e99&layer=..%2F&neuron=-4&input=x&epoch=7&tab=params"
    page.goto(f"{server.url}/runs/{run_id}?{junk}")
    _wait_tab(page, "run-tabs", "Loss & accuracy")
    _wait_label(page, "run-epoch-label", f"epoch {last}")
    page.wait_for_selector("#fig-loss .scatterlayer g.trace")
    page.goto(f"{server.url}/runs/{run_id}/signatures?tab=nope&epoch=-999999999999&layer=%00")
    _wait_tab(page, "sig-tabs", "Separability")
    _wait_label(page, "sig-epoch-label", f"epoch {last}")
    page.goto(f"{server.url}/compare?runs={run_id},{three_runs[2]}&tab=cka%20&epoch=abc")
    _wait_tab(page, "cmp-tabs", "Inside, in step")
    page.wait_for_function("document.querySelector('#cmp-epoch-label')?.innerText === 'epoch 40'")
    page.wait_for_load_state("networkidle")
    assert "Traceback" not in server.log_text()


def test_signatures_and_compare_links_open_their_tab_and_epoch(page, server, web_db, three_runs):
    run_id = three_runs[2]
    page.goto(f"{server.url}/runs/{run_id}/signatures?tab=flow&epoch=10")
    _wait_tab(page, "sig-tabs", "Flow")
    _wait_label(page, "sig-epoch-label", "epoch 10")
    shot(page, "url-state-signatures-flow")
    _mark_window(page)
    _click_tab(page, "sig-tabs", "Clusters")
    _wait_query(page, tab="clusters", epoch="10")
    _settle(page)
    page.go_back()
    _wait_tab(page, "sig-tabs", "Flow")
    assert _not_reloaded(page)

    ids = ",".join(map(str, three_runs))
    page.goto(f"{server.url}/compare?runs={ids}&tab=cka&epoch=12")
    _wait_tab(page, "cmp-tabs", "Similarity of layers (CKA)")
    page.wait_for_function("document.querySelector('#cmp-epoch-label').innerText === 'epoch 12'")
    # the linked tab draws on opening (its callback is not only for a click)
    page.wait_for_function(
        "document.querySelector('#cmp-fig-cka .js-plotly-plot')?.layout?.title?.text"
        "?.includes('epoch 12')"
    )
    shot(page, "url-state-compare-cka")
    _mark_window(page)
    _click_tab(page, "cmp-tabs", "Distributions")
    _wait_query(page, runs=ids, tab="weights", epoch="12")
    _settle(page)
    page.go_back()
    _wait_tab(page, "cmp-tabs", "Similarity of layers (CKA)")
    assert _not_reloaded(page) and _query(page) == {"runs": ids, "tab": "cka", "epoch": "12"}
