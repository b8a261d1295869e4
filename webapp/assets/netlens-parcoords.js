// NetLens: parallel coordinates of many runs, drawn in SVG (webapp/views/overview.py).
//
// It draws a Plotly parcoords figure (webapp/figures/parcoords.py builds it: dimensions with
// values, range, tickvals/ticktext; line colour with colorscale, cmin, cmax, colorbar) without
// WebGL. plotly.js's own parcoords draws in three WebGL contexts; in a browser without a GPU
// (software WebGL, as on the lab VM) that alone took 1.2-1.9 s per page, whatever the number
// of runs; this SVG draws 500 runs in a few tens of ms (docs/performance.md, "Many runs").
//
// Brushing works as in Plotly's parcoords: drag along an axis to keep the runs inside that
// range, shift-drag to add a range on the same axis, click an axis to clear it. After each
// brush the state of every axis goes to the panel's brush store as Plotly's restyleData would
// carry it ([{"dimensions[i].constraintrange": [[[lo, hi], ...] | null], ...}, [0]]), so the
// server's selection code reads it the same way.
(function () {
    'use strict';
    var SVG = 'http://www.w3.org/2000/svg';
    var BRUSH_HALF_WIDTH = 13;   // px either side of an axis that start a brush
    var MIN_DRAG_PX = 3;         // less than this is a click: it clears the axis
    var COLORBAR_SPACE = 78;     // px right of the last axis for the colour bar and its ticks
    var TOP_PX = 44;             // px above the axes for their (slanted) labels
    var state = {};              // per plot element id: what is drawn, and the brushes

    function el(name, attrs, parent) {
        var node = document.createElementNS(SVG, name);
        for (var key in attrs) { node.setAttribute(key, attrs[key]); }
        if (parent) { parent.appendChild(node); }
        return node;
    }

    function finite(v) { return typeof v === 'number' && isFinite(v); }

    function decode(values) {
        // Plotly's JSON may carry arrays as {dtype, bdata} (base64 typed arrays).
        if (Array.isArray(values)) { return values; }
        if (values && values.bdata) {
            var bin = atob(values.bdata), bytes = new Uint8Array(bin.length);
            for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
            var types = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array,
                         i1: Int8Array, u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};
            return Array.prototype.slice.call(new (types[values.dtype] || Float64Array)(bytes.buffer));
        }
        return [];
    }

    function niceTicks(lo, hi, count) {
        if (!(hi > lo)) { return [lo]; }
        var raw = (hi - lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
        var step = [1, 2, 5, 10].map(function (m) { return m * power; })
            .find(function (s) { return s >= raw; });
        var out = [];
        for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
            out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
        }
        return out;
    }

    function label(v) { return String(Number(v.toPrecision(3))); }

    function hexToRgb(color) {
        var m = /^#?([0-9a-f]{6})$/i.exec(color);
        if (m) {
            var n = parseInt(m[1], 16);
            return [n >> 16, (n >> 8) & 255, n & 255];
        }
        m = /rgba?\(([^)]+)\)/.exec(color);
        return m ? m[1].split(',').slice(0, 3).map(Number) : [31, 119, 180];
    }

    function colorAt(scale, t) {
        t = Math.max(0, Math.min(1, t));
        for (var i = 1; i < scale.length; i++) {
            if (t <= scale[i][0] || i === scale.length - 1) {
                var a = scale[i - 1], b = scale[i], span = b[0] - a[0];
                var f = span > 0 ? (t - a[0]) / span : 0;
                var ca = hexToRgb(a[1]), cb = hexToRgb(b[1]);
                return 'rgb(' + [0, 1, 2].map(function (k) {
                    return Math.round(ca[k] + (cb[k] - ca[k]) * f);
                }).join(',') + ')';
            }
        }
        return scale[scale.length - 1][1];
    }

    function lineColors(line, n) {
        var color = line && line.color;
        if (color === undefined || typeof color === 'string') {
            var one = color || '#1f77b4';
            return Array(n).fill(one);
        }
        var values = decode(color), scale = line.colorscale;
        var lo = finite(line.cmin) ? line.cmin : Math.min.apply(null, values);
        var hi = finite(line.cmax) ? line.cmax : Math.max.apply(null, values);
        return values.map(function (v) {
            return Array.isArray(scale) ? colorAt(scale, hi > lo ? (v - lo) / (hi - lo) : 0.5)
                : '#1f77b4';
        });
    }

    function model(figure, width, height) {
        var trace = (figure.data || [])[0] || {}, layout = figure.layout || {};
        // The panel shows the figure's title above the drawing (webapp/views/overview.py): only the
        // axis labels need room at the top.
        var margin = Object.assign({l: 70, r: 40, b: 30}, layout.margin || {}, {t: TOP_PX});
        var line = trace.line || {};
        var hasScale = Array.isArray(decode(line.color)) && decode(line.color).length > 0
            && line.showscale;
        var dims = (trace.dimensions || []).map(function (d) {
            var values = decode(d.values);
            var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
            if (Array.isArray(d.range)) { lo = d.range[0]; hi = d.range[1]; }
            if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
            var tickvals = Array.isArray(d.tickvals) ? d.tickvals : niceTicks(lo, hi, 5);
            var ticktext = Array.isArray(d.ticktext) ? d.ticktext : tickvals.map(label);
            return {label: d.label || '', values: values, lo: lo, hi: hi,
                    tickvals: tickvals, ticktext: ticktext};
        });
        var n = dims.length ? dims[0].values.length : 0;
        var left = margin.l, right = width - margin.r - (hasScale ? COLORBAR_SPACE : 0);
        var top = margin.t, bottom = height - margin.b;
        var step = dims.length > 1 ? (right - left) / (dims.length - 1) : 0;
        dims.forEach(function (d, i) {
            d.x = dims.length > 1 ? left + i * step : (left + right) / 2;
        });
        return {dims: dims, n: n, top: top, bottom: bottom, right: right, line: line,
                hasScale: hasScale, colors: lineColors(line, n),
                labels: ((layout.meta || {}).run_labels) || [],
                labelAngle: finite(trace.labelangle) ? trace.labelangle : 0};
    }

    function yOf(m, d, v) {
        return m.top + (1 - (v - d.lo) / (d.hi - d.lo)) * (m.bottom - m.top);
    }

    function valueOf(m, d, y) {
        return d.lo + (1 - (y - m.top) / (m.bottom - m.top)) * (d.hi - d.lo);
    }

    function drawAxis(svg, m, d, i) {
        var g = el('g', {'class': 'nl-pc-axis', 'data-index': i}, svg);
        el('line', {x1: d.x, x2: d.x, y1: m.top, y2: m.bottom, 'class': 'nl-pc-axis-line'}, g);
        d.tickvals.forEach(function (v, k) {
            if (!(v >= d.lo - 1e-9 && v <= d.hi + 1e-9)) { return; }
            var y = yOf(m, d, v);
            el('line', {x1: d.x - 4, x2: d.x, y1: y, y2: y, 'class': 'nl-pc-tick'}, g);
            var text = el('text', {x: d.x - 6, y: y, 'class': 'nl-pc-tick-label'}, g);
            text.textContent = d.ticktext[k];
        });
        var title = el('text', {x: d.x, y: m.top - 12, 'class': 'nl-pc-label',
                                transform: 'rotate(' + m.labelAngle + ' ' + d.x + ' ' +
                                    (m.top - 12) + ')'}, g);
        title.textContent = d.label;
        g.appendChild(el('g', {'class': 'nl-pc-brushes'}));
        el('rect', {x: d.x - BRUSH_HALF_WIDTH, y: m.top - 4, width: 2 * BRUSH_HALF_WIDTH,
                    height: m.bottom - m.top + 8, 'class': 'nl-pc-brush-area'}, g);
        return g;
    }

    function drawColorbar(svg, m) {
        var line = m.line, x = m.right + 34, top = m.top + (m.bottom - m.top) * 0.1;
        var bottom = m.bottom - (m.bottom - m.top) * 0.1;
        var defs = el('defs', {}, svg);
        var id = 'nl-pc-scale-' + Math.random().toString(36).slice(2);
        var gradient = el('linearGradient', {id: id, x1: 0, y1: 1, x2: 0, y2: 0}, defs);
        (line.colorscale || []).forEach(function (stop) {
            el('stop', {offset: stop[0], 'stop-color': stop[1]}, gradient);
        });
        var g = el('g', {'class': 'nl-pc-colorbar'}, svg);
        el('rect', {x: x, y: top, width: 14, height: bottom - top, fill: 'url(#' + id + ')'}, g);
        var bar = line.colorbar || {}, lo = line.cmin, hi = line.cmax;
        var ticks = Array.isArray(bar.tickvals) ? bar.tickvals : niceTicks(lo, hi, 4);
        var texts = Array.isArray(bar.ticktext) ? bar.ticktext : ticks.map(label);
        ticks.forEach(function (v, k) {
            if (!(v >= lo - 1e-9 && v <= hi + 1e-9)) { return; }
            var y = bottom - (v - lo) / (hi - lo) * (bottom - top);
            var t = el('text', {x: x + 18, y: y, 'class': 'nl-pc-colorbar-tick'}, g);
            t.textContent = texts[k];
        });
        var title = el('text', {x: x, y: top - 8, 'class': 'nl-pc-colorbar-title'}, g);
        title.textContent = ((bar.title || {}).text) || '';
    }

    function inside(s, j) {
        for (var i = 0; i < s.model.dims.length; i++) {
            var ranges = s.brushes[i];
            if (!ranges || !ranges.length) { continue; }
            var v = s.model.dims[i].values[j], hit = false;
            for (var r = 0; r < ranges.length; r++) {
                if (v >= ranges[r][0] && v <= ranges[r][1]) { hit = true; break; }
            }
            if (!hit) { return false; }
        }
        return true;
    }

    function highlight(s) {
        var any = s.brushes.some(function (r) { return r && r.length; });
        for (var j = 0; j < s.paths.length; j++) {
            var on = !any || inside(s, j), path = s.paths[j];
            if (path.__on !== on) {
                path.__on = on;
                path.setAttribute('class', on ? 'nl-pc-line' : 'nl-pc-line nl-pc-off');
                (on ? s.focus : s.context).appendChild(path);
            }
        }
        s.svg.querySelectorAll('.nl-pc-axis').forEach(function (g, i) {
            var box = g.querySelector('.nl-pc-brushes');
            while (box.firstChild) { box.removeChild(box.firstChild); }
            (s.brushes[i] || []).forEach(function (r) {
                var d = s.model.dims[i], y1 = yOf(s.model, d, r[1]), y0 = yOf(s.model, d, r[0]);
                el('rect', {x: d.x - 7, y: Math.min(y0, y1), width: 14,
                            height: Math.max(2, Math.abs(y0 - y1)), 'class': 'nl-pc-brush'}, box);
            });
        });
    }

    function publish(s) {
        var changes = {};
        s.model.dims.forEach(function (d, i) {
            var ranges = s.brushes[i];
            // one value per trace, as in restyleData: [ranges of trace 0]
            changes['dimensions[' + i + '].constraintrange'] =
                [ranges && ranges.length ? ranges.map(function (r) { return r.slice(); }) : null];
        });
        if (window.dash_clientside && window.dash_clientside.set_props && s.brushId) {
            window.dash_clientside.set_props(s.brushId, {data: [changes, [0]]});
        }
        s.element.setAttribute('data-brushes', JSON.stringify(s.brushes));
    }

    function listen(s) {
        s.svg.addEventListener('mousedown', function (event) {
            var area = event.target.closest && event.target.closest('.nl-pc-brush-area');
            if (!area || event.button !== 0) { return; }
            event.preventDefault();
            var i = Number(area.parentNode.getAttribute('data-index'));
            var d = s.model.dims[i], box = s.svg.getBoundingClientRect();
            var y0 = Math.max(s.model.top, Math.min(s.model.bottom, event.clientY - box.top));
            var kept = event.shiftKey ? (s.brushes[i] || []).slice() : [];
            var moved = false;

            function range(clientY) {
                var y1 = Math.max(s.model.top, Math.min(s.model.bottom, clientY - box.top));
                var a = valueOf(s.model, d, y0), b = valueOf(s.model, d, y1);
                return [Math.min(a, b), Math.max(a, b)];
            }

            function move(e) {
                if (!moved && Math.abs(e.clientY - event.clientY) < MIN_DRAG_PX) { return; }
                moved = true;
                s.brushes[i] = kept.concat([range(e.clientY)]);
                highlight(s);
            }

            function up(e) {
                window.removeEventListener('mousemove', move);
                window.removeEventListener('mouseup', up);
                if (moved) {
                    s.brushes[i] = kept.concat([range(e.clientY)]);
                } else {
                    s.brushes[i] = event.shiftKey ? kept : [];  // a click clears the axis
                }
                highlight(s);
                publish(s);
            }

            window.addEventListener('mousemove', move);
            window.addEventListener('mouseup', up);
        });
    }

    function draw(element, figure, brushId, keepBrushes) {
        var previous = state[element.id];
        var width = element.clientWidth || 800;
        var height = element.clientHeight || (figure.layout || {}).height || 520;
        var m = model(figure, width, height);
        while (element.firstChild) { element.removeChild(element.firstChild); }
        var svg = el('svg', {width: width, height: height, 'class': 'nl-pc'}, element);
        var context = el('g', {'class': 'nl-pc-context'}, svg);
        var focus = el('g', {'class': 'nl-pc-focus'}, svg);
        var paths = [];
        for (var j = 0; j < m.n; j++) {
            var points = m.dims.map(function (d) {
                return d.x.toFixed(1) + ',' + yOf(m, d, d.values[j]).toFixed(1);
            });
            var path = el('path', {d: 'M' + points.join('L'), 'class': 'nl-pc-line',
                                   stroke: m.colors[j]}, focus);
            path.__on = true;
            if (m.labels[j]) { el('title', {}, path).textContent = m.labels[j]; }
            paths.push(path);
        }
        m.dims.forEach(function (d, i) { drawAxis(svg, m, d, i); });
        if (m.hasScale) { drawColorbar(svg, m); }
        var s = {element: element, svg: svg, model: m, paths: paths, focus: focus,
                 context: context, brushId: brushId, figure: figure,
                 brushes: keepBrushes && previous && previous.model.dims.length === m.dims.length
                     ? previous.brushes : m.dims.map(function () { return []; })};
        state[element.id] = s;
        listen(s);
        highlight(s);
        element.setAttribute('data-drawn', String(m.n));
        element.setAttribute('data-axes', String(m.dims.length));
        if (window.performance && performance.mark) { performance.mark('netlens-parcoords-drawn'); }
        return s;
    }

    function domId(id) {
        var api = window.dash_component_api;
        if (typeof id === 'string') { return id; }
        if (api && api.stringifyId) { return api.stringifyId(id); }
        return JSON.stringify(Object.keys(id).sort().reduce(function (o, k) {
            o[k] = id[k]; return o;
        }, {}));
    }

    function drawWhenThere(plotId, figure, brushId, tries) {
        var element = document.getElementById(domId(plotId));
        if (!element) {
            if (tries < 60) {
                requestAnimationFrame(function () {
                    drawWhenThere(plotId, figure, brushId, tries + 1);
                });
            }
            return;
        }
        draw(element, figure, brushId, false);
        if (!element.__nlResize && window.ResizeObserver) {
            var lastWidth = element.clientWidth;
            element.__nlResize = new ResizeObserver(function () {
                var s = state[element.id];
                if (s && element.clientWidth !== lastWidth) {
                    lastWidth = element.clientWidth;
                    draw(element, s.figure, s.brushId, true);
                }
            });
            element.__nlResize.observe(element);
        }
    }

    window.dash_clientside = window.dash_clientside || {};
    window.dash_clientside.netlens = Object.assign(window.dash_clientside.netlens || {}, {
        // Clientside callback (webapp/views/overview.py): the figure store's data, the ids of the
        // element to draw in and of the brush store; returns the number of axes drawn.
        drawParcoords: function (figure, plotId, brushId) {
            var ok = figure && figure.data && figure.data.length;
            if (ok) { drawWhenThere(plotId, figure, brushId, 0); }
            return ok ? (figure.data[0].dimensions || []).length : 0;
        }
    });
    // For scripts and tests: set the brushes of a drawn element ({axis index: [[lo, hi], ...]}
    // in the dimension's units; an axis left out is cleared), as the mouse would.
    function setBrushes(element, brushes) {
        var s = state[element.id];
        if (!s) { return false; }
        s.brushes = s.model.dims.map(function (d, i) {
            return (brushes[i] || []).map(function (r) {
                return [Math.min(r[0], r[1]), Math.max(r[0], r[1])];
            });
        });
        highlight(s);
        publish(s);
        return true;
    }

    // -- the drawing as a file (the panel's PNG and SVG buttons, webapp/views/overview.py) ----
    // Drawn again at publication size (1200 x 700 CSS pixels; PNG at scale 2) off screen, with
    // the brushes as they are and the panel's heading as its title; every style the page's
    // stylesheet gives it is written into the SVG, so the file looks the same anywhere.
    var EXPORT = {width: 1200, height: 700, scale: 2, titleSpace: 46};
    var STYLED = ['fill', 'fill-opacity', 'stroke', 'stroke-width', 'stroke-opacity',
                  'stroke-linejoin', 'paint-order', 'opacity', 'font-family', 'font-size',
                  'font-weight', 'text-anchor', 'dominant-baseline'];

    function inlineStyles(root) {
        [root].concat(Array.prototype.slice.call(root.querySelectorAll('*'))).forEach(function (node) {
            var computed = window.getComputedStyle(node);
            var style = STYLED.map(function (name) {
                return name + ':' + computed.getPropertyValue(name);
            }).join(';');
            node.setAttribute('style', style);
            node.removeAttribute('class');
        });
    }

    function exportSvg(element) {
        var s = state[element.id];
        if (!s) { return null; }
        var meta = (s.figure.layout || {}).meta || {};
        var host = document.createElement('div');
        host.id = element.id + '-export';
        host.style.cssText = 'position:fixed;left:-20000px;top:0;width:' + EXPORT.width +
            'px;height:' + (EXPORT.height - EXPORT.titleSpace) + 'px';
        document.body.appendChild(host);
        try {
            var copy = draw(host, s.figure, null, false);
            copy.brushes = s.brushes.map(function (ranges) {
                return (ranges || []).map(function (r) { return r.slice(); });
            });
            highlight(copy);
            copy.svg.querySelectorAll('.nl-pc-brush-area').forEach(function (area) {
                area.parentNode.removeChild(area);
            });
            var out = el('svg', {width: EXPORT.width, height: EXPORT.height,
                                 viewBox: '0 0 ' + EXPORT.width + ' ' + EXPORT.height});
            el('rect', {x: 0, y: 0, width: EXPORT.width, height: EXPORT.height, fill: '#fff'}, out);
            var title = el('text', {x: 20, y: 28, 'font-size': 17, fill: '#212529',
                                    'font-family': 'system-ui, sans-serif'}, out);
            title.textContent = meta.heading || 'Runs in parallel coordinates';
            var notes = (meta.notes || []).join(' · ');
            if (notes) {
                var sub = el('text', {x: 20, y: 44, 'font-size': 11, fill: '#6c757d',
                                      'font-family': 'system-ui, sans-serif'}, out);
                sub.textContent = notes;
            }
            inlineStyles(copy.svg);
            copy.svg.setAttribute('x', 0);
            copy.svg.setAttribute('y', EXPORT.titleSpace);
            out.appendChild(copy.svg);
            return new XMLSerializer().serializeToString(out);
        } finally {
            delete state[host.id];
            document.body.removeChild(host);
        }
    }

    function saveBlob(blob, filename) {
        var url = URL.createObjectURL(blob);
        var link = document.createElement('a');
        link.href = url;
        link.download = filename;
        document.body.appendChild(link);
        link.click();
        document.body.removeChild(link);
        setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    }

    function saveDrawing(element, format) {
        var text = exportSvg(element);
        if (text === null) { return Promise.resolve(false); }
        var name = 'runs-parallel-coordinates';
        var svgBlob = new Blob([text], {type: 'image/svg+xml;charset=utf-8'});
        if (format === 'svg') {
            saveBlob(svgBlob, name + '.svg');
            return Promise.resolve(true);
        }
        return new Promise(function (resolve, reject) {
            var image = new Image(), url = URL.createObjectURL(svgBlob);
            image.onload = function () {
                var canvas = document.createElement('canvas');
                canvas.width = EXPORT.width * EXPORT.scale;
                canvas.height = EXPORT.height * EXPORT.scale;
                var context = canvas.getContext('2d');
                context.scale(EXPORT.scale, EXPORT.scale);
                context.drawImage(image, 0, 0, EXPORT.width, EXPORT.height);
                URL.revokeObjectURL(url);
                canvas.toBlob(function (png) {
                    saveBlob(png, name + '.png');
                    resolve(true);
                }, 'image/png');
            };
            image.onerror = function () {
                URL.revokeObjectURL(url);
                reject(new Error('NetLens: the drawing could not be turned into a PNG'));
            };
            image.src = url;
        });
    }

    document.addEventListener('click', function (event) {
        var button = event.target.closest && event.target.closest('.nl-pc-download');
        if (!button) { return; }
        var panel = button.closest('.overview-panel');
        var element = panel && panel.querySelector('.overview-graph');
        if (element) {
            saveDrawing(element, button.getAttribute('data-format')).catch(function (err) {
                console.warn(err);
            });
        }
    });

    window.netlensParcoords = {draw: draw, setBrushes: setBrushes, state: state,
                               exportSvg: exportSvg, save: saveDrawing};
})();
