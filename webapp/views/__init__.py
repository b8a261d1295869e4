"""The parts of the pages: layouts, components, callbacks and the data they read, which the
page modules in webapp/pages/ import from here.

Naming rule: a module is named after the page it serves, `views/<page>.py` for
`pages/<page>.py` (run, compare, admin, signatures), or, for a part that is not one page's
(embedded by several pages, or one card or form of a page), after the part itself (overview,
limits, throttles, sweep); no suffixes. `views/common.py` holds what pages share: small UI
pieces, the error guard of a view, the active-tab check and the epoch player.

Not here: pure builders and computations (webapp/figures/, webapp/similarity.py) and the
app's infrastructure (app, auth, authz, callback_guard, headers, context, data, api, ...).

The parts live outside webapp/pages/ on purpose: Dash imports each page as `pages.<name>`,
and a page imported again as `netlens.webapp.pages.<name>` registers its path a second time
(see views/overview.py), so what tests, benchmarks and other pages import lives here.
"""
