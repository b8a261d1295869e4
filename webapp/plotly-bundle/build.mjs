// Builds webapp/assets/netlens-plotly.min.js: plotly.js with only the trace types NetLens draws.
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
// plotly.js is pinned (package.json, package-lock.json) to exactly the version the `plotly`
// Python package bundles (plotly/package_data/plotly.min.js, the one dash would otherwise
// serve); this script refuses to build another one when it can find that file.
// tests/unit/test_assets.py checks the committed bundle's header against it, and that every
// `go.<Trace>(` used under webapp/ is in TRACES.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

// Trace types registered in the bundle (scatter is always part of plotly.js/lib/core).
// Drawn today: scatter, heatmap, contour, scatter3d, bar, sankey. For pages on the way:
// histogram, box, parcoords.
export const TRACES = ['scatter', 'heatmap', 'contour', 'scatter3d', 'bar', 'histogram', 'box',
    'sankey', 'parcoords'];

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = process.env.NETLENS_REPO || join(HERE, '..', '..');
const OUT = join(REPO, 'webapp', 'assets', 'netlens-plotly.min.js');
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

const entry = [
    "'use strict';",
    "var Plotly = require('plotly.js/lib/core');",
    'Plotly.register([',
    ...TRACES.filter(t => t !== 'scatter').map(t => `    require('plotly.js/lib/${t}'),`),
    ']);',
    'module.exports = Plotly;',
].join('\n');

const banner = `/**
* plotly.js v${version}
* NetLens partial bundle, built by webapp/plotly-bundle/build.mjs
* traces: ${TRACES.join(', ')}
* Copyright 2012-2026, Plotly, Inc.
* All rights reserved.
* Licensed under the MIT license
*/`;

// Only map traces (not registered here) need CSS (maplibre-gl's); plotly.js injects its own
// styles from JavaScript. Any other .css import becomes an empty module.
const noCss = {
    name: 'no-css',
    setup(build) {
        build.onResolve({ filter: /\.css$/ }, args => ({ path: args.path, namespace: 'no-css' }));
        build.onLoad({ filter: /.*/, namespace: 'no-css' }, () => ({ contents: '', loader: 'js' }));
    },
};

await esbuild.build({
    stdin: { contents: entry, resolveDir: HERE, sourcefile: 'netlens-plotly-entry.js' },
    outfile: OUT,
    bundle: true,
    format: 'iife',
    globalName: 'Plotly',
    minify: true,
    legalComments: 'eof',  // third-party licence notices, as plotly.js's own dist
    target: 'es2016',
    platform: 'browser',
    // as plotly.js's own esbuild-config.js
    alias: { regl: '@plotly/regl' },
    define: { global: 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false' },
    plugins: [noCss],
    banner: { js: banner },
    footer: { js: 'window.Plotly = Plotly;' },
    logLevel: 'warning',
});

const bytes = readFileSync(OUT);
const manifest = {
    file: relative(REPO, OUT),
    plotly_js: version,
    esbuild: require('esbuild/package.json').version,
    traces: TRACES,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
};
writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
console.log(`wrote ${manifest.file}: ${(bytes.length / 1e6).toFixed(2)} MB, plotly.js v${version}, ` +
    `traces ${TRACES.join(', ')}`);
