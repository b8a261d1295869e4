// Builds webapp/assets/netlens-plotly.min.js: plotly.js with only the trace types NetLens draws,
// and webapp/assets/netlens-plotly-gl3d.lazy.js: the 3-D trace types, loaded only by a page
// that plots one.
//
//     bash scripts/build_plotly_bundle.sh
//
// (which copies this folder's package.json, package-lock.json and this file to build/plotly-bundle,
// runs `npm ci` there, out of webapp/, and runs this script with NETLENS_REPO set).
//
// Dash puts every .js file of webapp/assets/ in every page's <script> tags, so `window.Plotly`
// exists before the first dcc.Graph renders; dcc.Graph then uses it instead of fetching the
// full plotly.min.js (4.8 MB, ~0.9 s of script evaluation on the lab VM) after the layout.
//
// The lazy part: scatter3d (plotly.js's gl3d and stackgl_modules, ~560 kB) was ~0.2 s of the
// main bundle's evaluation on every page, for one tab of the run page. It is now a second
// bundle, netlens-plotly-gl3d.lazy.js, that Dash does not put in the pages (webapp/app.py:
// `assets_ignore`). The main bundle wraps Plotly.newPlot / react / addTraces: a call whose
// figure has a LAZY_TRACES type first loads that bundle (a <script> next to the main one), which
// registers the traces with `Plotly.register`, then plots; any other call goes straight through.
// The lazy bundle holds only the modules the main one lacks: every plotly.js module both need
// (the registry, Lib, the plot API, d3, ...) is the main bundle's own instance, which the main
// bundle lists in `window.__netlensPlotlyModules` (by path) and the lazy one requires from there.
// So there is one registry and one copy of plotly.js's state, as in a single bundle.
//
// plotly.js is pinned (package.json, package-lock.json) to exactly the version the `plotly`
// Python package bundles (plotly/package_data/plotly.min.js, the one dash would otherwise
// serve); this script refuses to build another one when it can find that file.
// tests/unit/test_assets.py checks the committed bundle's header against it, and that every
// `go.<Trace>(` used under webapp/ is in TRACES or LAZY_TRACES.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

// Trace types registered in the main bundle (scatter is always part of plotly.js/lib/core).
// Drawn today: scatter, heatmap, contour, bar, sankey. For pages on the way: histogram, box.
// Not parcoords: NetLens draws its parallel coordinates in SVG (webapp/assets/
// netlens-parcoords.js); plotly.js's WebGL parcoords was 1.2 s and more per page without a GPU.
export const TRACES = ['scatter', 'heatmap', 'contour', 'bar', 'histogram', 'box', 'sankey'];
// Trace types in the lazily loaded bundle: the run page's "3D network" tab (scatter3d).
export const LAZY_TRACES = ['scatter3d'];

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = process.env.NETLENS_REPO || join(HERE, '..', '..');
const ASSETS = join(REPO, 'webapp', 'assets');
const OUT = join(ASSETS, 'netlens-plotly.min.js');
const LAZY_NAME = 'netlens-plotly-gl3d.lazy.js';  // `.lazy.js`: see assets_ignore in webapp/app.py
const LAZY_OUT = join(ASSETS, LAZY_NAME);
const MANIFEST = join(REPO, 'webapp', 'plotly-bundle', 'manifest.json');
const require = createRequire(import.meta.url);
const version = require('plotly.js/package.json').version;

// The plotly.js that dash would serve: the Python package's bundle (when a venv is around).
function pythonPlotlyVersion() {
    const candidates = [];
    for (const python of [process.env.PYTHON, join(REPO, '.venv', 'bin', 'python'), 'python3']) {
        if (!python || (python.includes('/') && !existsSync(python))) continue;
        try {
            const path = execFileSync(python, ['-c',
                'import plotly, os; print(os.path.join(os.path.dirname(plotly.__file__), ' +
                '"package_data", "plotly.min.js"))'], { encoding: 'utf8' }).trim();
            candidates.push(path);
            break;
        } catch { /* no plotly in that python */ }
    }
    for (const path of candidates) {
        const m = readFileSync(path, 'utf8').slice(0, 500).match(/plotly\.js v([0-9][0-9.]*)/);
        if (m) return [m[1], path];
    }
    return [null, null];
}

const [pyVersion, pyPath] = pythonPlotlyVersion();
if (pyVersion === null) {
    console.warn('warning: no Python plotly package found; cannot check the plotly.js version');
} else if (pyVersion !== version) {
    console.error(`plotly.js ${version} is installed here but ${pyPath} is plotly.js ` +
        `v${pyVersion}: pin "plotly.js": "${pyVersion}" in package.json, npm install, rebuild.`);
    process.exit(1);
}

const sha256 = data => createHash('sha256').update(data).digest('hex');

// Only map traces (not registered here) need CSS (maplibre-gl's); plotly.js injects its own
// styles from JavaScript. Any other .css import becomes an empty module.
const noCss = {
    name: 'no-css',
    setup(build) {
        build.onResolve({ filter: /\.css$/ }, args => ({ path: args.path, namespace: 'no-css' }));
        build.onLoad({ filter: /.*/, namespace: 'no-css' }, () => ({ contents: '', loader: 'js' }));
    },
};

const common = {
    absWorkingDir: HERE,  // metafile paths are relative to it
    bundle: true,
    format: 'iife',
    minify: true,
    legalComments: 'eof',  // third-party licence notices, as plotly.js's own dist
    target: 'es2016',
    platform: 'browser',
    // as plotly.js's own esbuild-config.js
    alias: { regl: '@plotly/regl' },
    define: { global: 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false' },
    logLevel: 'warning',
};

// `shared`: {module name: absolute path} of the modules the lazy bundle takes
// from the main one; `lazy`: the lazy bundle's file name with its sha256 (for the URL).
function mainEntry(shared, lazy, buildId) {
    const lines = [
        "'use strict';",
        "var Plotly = require('plotly.js/lib/core');",
        'Plotly.register([',
        ...TRACES.filter(t => t !== 'scatter').map(t => `    require('plotly.js/lib/${t}'),`),
        ']);',
    ];
    if (shared) {
        lines.push(
            'window.__netlensPlotlyModules = {',
            `    __build: ${JSON.stringify(buildId)},`,
            ...Object.keys(shared).sort().map(
                name => `    ${JSON.stringify(name)}: require(${JSON.stringify(shared[name])}),`),
            '};',
            `var LAZY_TYPES = ${JSON.stringify(Object.fromEntries(LAZY_TRACES.map(t => [t, true])))};`,
            `var LAZY_SRC = ${JSON.stringify(`${lazy.name}?v=${lazy.sha256.slice(0, 12)}`)};`,
            readFileSync(join(HERE, 'lazy-loader.js'), 'utf8'),
        );
    }
    lines.push('module.exports = Plotly;');
    return lines.join('\n');
}

function stdin(contents, name) {
    return { contents, resolveDir: HERE, sourcefile: name };
}

// 1. Which modules the main bundle holds.
const probe = await esbuild.build({
    ...common, stdin: stdin(mainEntry(null), 'netlens-plotly-entry.js'), write: false,
    metafile: true, plugins: [noCss],
});
// A module's name: its path from node_modules/ on ("plotly.js/src/registry.js"), the same
// wherever the build runs.
const moduleName = path => {
    const at = path.split('\\').join('/').indexOf('node_modules/');
    return at < 0 ? path : path.slice(at + 'node_modules/'.length);
};
const bundled = metafile => Object.keys(metafile.inputs)
    .filter(p => !p.startsWith('<') && !p.startsWith('no-css:')).map(moduleName);
const mainModules = new Set(bundled(probe.metafile));
const buildId = sha256([version, ...[...mainModules].sort()].join('\n')).slice(0, 16);

// 2. The lazy bundle: what it needs that the main bundle holds comes from the main bundle.
const shared = {};
const INNER = { netlensInner: true };
const fromMain = {
    name: 'from-main',
    setup(build) {
        build.onResolve({ filter: /.*/ }, async args => {
            if (args.kind === 'entry-point' || args.pluginData === INNER ||
                args.namespace !== 'file') return undefined;
            const found = await build.resolve(args.path, {
                kind: args.kind, importer: args.importer, resolveDir: args.resolveDir,
                pluginData: INNER,
            });
            if (found.errors.length) return { errors: found.errors };
            if (found.namespace !== 'file') return found;
            const name = moduleName(relative(HERE, found.path));
            if (!mainModules.has(name)) return { path: found.path, sideEffects: found.sideEffects };
            shared[name] = found.path;
            return { path: name, namespace: 'netlens-main' };
        });
        build.onLoad({ filter: /.*/, namespace: 'netlens-main' }, args => ({
            contents: `module.exports = window.__netlensPlotlyModules[${JSON.stringify(args.path)}];`,
            loader: 'js',
        }));
    },
};
const lazyEntry = [
    "'use strict';",
    'var shared = window.__netlensPlotlyModules;',
    `if(!shared || shared.__build !== ${JSON.stringify(buildId)}) {`,
    `    throw new Error('${LAZY_NAME} does not belong to this netlens-plotly.min.js (build ' +`,
    `        (shared && shared.__build) + ', want ${buildId}): reload the page');`,
    '}',
    'window.Plotly.register([',
    ...LAZY_TRACES.map(t => `    require('plotly.js/lib/${t}'),`),
    ']);',
].join('\n');
const lazyBanner = `/**
* plotly.js v${version}
* NetLens lazily loaded traces: ${LAZY_TRACES.join(', ')}
* built by webapp/plotly-bundle/build.mjs; netlens-plotly.min.js loads this file before the
* first plot that draws one of these traces, and it needs that bundle's modules
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
*/`;
await esbuild.build({
    ...common, stdin: stdin(lazyEntry, 'netlens-plotly-lazy-entry.js'), outfile: LAZY_OUT,
    plugins: [noCss, fromMain], banner: { js: lazyBanner },
});
const lazyBytes = readFileSync(LAZY_OUT);
const lazy = { name: LAZY_NAME, sha256: sha256(lazyBytes) };

// 3. The main bundle, now listing the modules the lazy one takes from it.
const banner = `/**
* plotly.js v${version}
* NetLens partial bundle, built by webapp/plotly-bundle/build.mjs
* traces: ${TRACES.join(', ')}
* lazy traces (${LAZY_NAME}, loaded before the first plot that needs one): ${LAZY_TRACES.join(', ')}
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
*/`;
const main = await esbuild.build({
    ...common, stdin: stdin(mainEntry(shared, lazy, buildId), 'netlens-plotly-entry.js'),
    outfile: OUT, globalName: 'Plotly', metafile: true, plugins: [noCss], banner: { js: banner },
    footer: { js: 'window.Plotly = Plotly;' },
});
const added = bundled(main.metafile).filter(name => !mainModules.has(name));
if (added.length) {
    console.error(`exposing the shared modules added modules to the main bundle: ${added}`);
    process.exit(1);
}

const bytes = readFileSync(OUT);
const manifest = {
    file: relative(REPO, OUT),
    plotly_js: version,
    esbuild: require('esbuild/package.json').version,
    traces: TRACES,
    bytes: bytes.length,
    sha256: sha256(bytes),
    lazy: {
        file: relative(REPO, LAZY_OUT),
        traces: LAZY_TRACES,
        shared_modules: Object.keys(shared).length,
        bytes: lazyBytes.length,
        sha256: lazy.sha256,
    },
};
writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
console.log(`wrote ${manifest.file}: ${(bytes.length / 1e6).toFixed(2)} MB, plotly.js v${version}, ` +
    `traces ${TRACES.join(', ')}`);
console.log(`wrote ${manifest.lazy.file}: ${(lazyBytes.length / 1e6).toFixed(2)} MB, traces ` +
    `${LAZY_TRACES.join(', ')} (${manifest.lazy.shared_modules} modules from the main bundle)`);
