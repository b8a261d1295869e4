// NetLens: every graph's figure as a file, at publication size, with its title.
//
// Plotly's camera button saves a PNG at the size the graph has on screen. Each dcc.Graph's
// config (webapp/views/common.py graph_config) sets toImageButtonOptions to the size of a
// full-width figure in a paper (1200 x 700 CSS pixels, PNG at scale 2) and a file name. This
// script replaces the camera, in every plot's modebar, with two buttons that use those
// options: "Download PNG" and "Download SVG" (plotly.js has no SVG button of its own, and a
// custom modebar button needs a function, which a Dash config cannot carry). A figure drawn
// without a title (it sits under its tab's heading on the page) gets one in the file only:
// toImageButtonOptions.title, set by the page.
//
// It sets them as plotly.js's defaults (Plotly.setPlotConfig), before the first plot. Pages
// registered with graphs=False ship no plotly.js (webapp/page_scripts.py); when dcc.Graph loads
// it later, the defaults are set as soon as `window.Plotly` appears. Without this script the
// camera button is still there, with the same size and name.
(function () {
    'use strict';
    var SIZE = {width: 1200, height: 700, scale: 2};
    var ICON_SVG = {  // the letters "SVG", in blocks (y down), beside the camera (PNG)
        width: 1000, height: 1000,
        path: 'M40 280h280v90h-190v70h190v280h-280v-90h190v-100h-190z ' +
              'M350 280h100l50 300 50-300h100l-100 440h-100z ' +
              'M680 280h280v90h-190v260h100v-80h-50v-80h140v250h-280z'
    };

    function options(gd, format) {
        var given = (gd._context && gd._context.toImageButtonOptions) || {};
        var height = given.height;
        if (height === null || height === undefined) {  // the figure's own (it grows)
            height = (gd._fullLayout && gd._fullLayout.height) || SIZE.height;
        }
        return {
            format: format,
            width: given.width || SIZE.width,
            height: height,
            scale: format === 'svg' ? 1 : (given.scale || SIZE.scale),
            filename: given.filename || 'netlens-figure',
            title: given.title || ''
        };
    }

    function titled(gd, title) {
        // The figure as drawn, with a title in the file when the page drew it without one,
        // and what the page asks of a file only (layout.meta.export, e.g. the legend that the
        // page shows in HTML beside the graph).
        var meta = gd.layout.meta;
        var layout = Object.assign({}, gd.layout,
                                   (meta && typeof meta === 'object' && meta.export) || {});
        var current = typeof layout.title === 'string' ? {text: layout.title} : layout.title;
        var text = (current && current.text) || '';
        if (!String(text).trim() && title) {
            layout.title = {text: title, x: 0.02, xanchor: 'left'};
            var margin = Object.assign({}, layout.margin || {});
            margin.t = Math.max(margin.t || 0, 60);
            layout.margin = margin;
        } else if (current && (current.xref || 'container') === 'container' &&
                   typeof current.x === 'number' && current.x < 0.02) {
            // a title at the page card's very edge: in the file, off the edge
            layout.title = Object.assign({}, current, {x: 0.02});
        }
        return {data: gd.data, layout: layout, config: {}};
    }

    function save(gd, format) {
        var opts = options(gd, format);
        var figure = titled(gd, opts.title);
        delete opts.title;
        return window.Plotly.downloadImage(figure, opts).catch(function (err) {
            console.warn('NetLens: could not save the figure:', err);
        });
    }

    function buttons(Plotly) {
        return [
            {
                name: 'netlens-png',
                title: 'Download PNG (publication size)',
                icon: Plotly.Icons.camera,
                click: function (gd) { return save(gd, 'png'); }
            },
            {
                name: 'netlens-svg',
                title: 'Download SVG (publication size)',
                icon: ICON_SVG,
                click: function (gd) { return save(gd, 'svg'); }
            }
        ];
    }

    function install(Plotly) {
        if (!Plotly || Plotly.__netlensSave || typeof Plotly.setPlotConfig !== 'function') {
            return;
        }
        Plotly.__netlensSave = true;
        Plotly.setPlotConfig({
            modeBarButtonsToRemove: ['toImage'],
            modeBarButtonsToAdd: buttons(Plotly)
        });
    }

    window.netlensSave = {save: save, options: options};
    if (window.Plotly) {
        install(window.Plotly);
        return;
    }
    // plotly.js comes later (dcc.Graph loads it on a page that shipped without it): set the
    // defaults when the bundle assigns window.Plotly, before dcc.Graph's first plot.
    var held;
    try {
        Object.defineProperty(window, 'Plotly', {
            configurable: true,
            enumerable: true,
            get: function () { return held; },
            set: function (value) {
                held = value;
                install(value);
            }
        });
    } catch (err) {
        console.warn('NetLens: figure downloads keep plotly\'s own camera button:', err);
    }
})();
