// Part of the main bundle's entry (build.mjs puts it after `var Plotly`, LAZY_TYPES and
// LAZY_SRC): Plotly.newPlot, Plotly.react and Plotly.addTraces load the lazy bundle first when
// they are given a trace of a type in LAZY_TYPES, then plot as usual (the returned promise
// resolves once plotted, as plotly.js's own). dcc.Graph draws with Plotly.react.
var lazyScript = document.currentScript;
var lazyLoading = null;
var lazyLoaded = false;

function lazyUrl() {
    var main = lazyScript && lazyScript.src ? lazyScript :
        document.querySelector('script[src*="netlens-plotly.min.js"]');
    return new URL(LAZY_SRC, main ? main.src : document.baseURI).href;
}

function loadLazyTraces() {
    if(!lazyLoading) {
        lazyLoading = new Promise(function(resolve, reject) {
            var script = document.createElement('script');
            script.src = lazyUrl();
            script.async = true;
            script.onload = function() { lazyLoaded = true; resolve(); };
            script.onerror = function() {
                lazyLoading = null;  // a later plot tries again
                reject(new Error('NetLens: could not load ' + script.src));
            };
            document.head.appendChild(script);
        });
    }
    return lazyLoading;
}

// A figure ({data: [...]}), a list of traces, or one trace (addTraces).
function needsLazyTraces(arg) {
    if(lazyLoaded || !arg || typeof arg !== 'object') return false;
    var traces = Array.isArray(arg) ? arg : Array.isArray(arg.data) ? arg.data : [arg];
    for(var i = 0; i < traces.length; i++) {
        if(traces[i] && LAZY_TYPES[traces[i].type] === true) return true;
    }
    return false;
}

['newPlot', 'react', 'addTraces'].forEach(function(name) {
    var draw = Plotly[name];
    Plotly[name] = function() {
        var self = this;
        var args = arguments;
        if(!needsLazyTraces(args[1])) return draw.apply(self, args);
        return loadLazyTraces().then(function() {
            return draw.apply(self, args);
        }, function(err) {
            console.error(err);
            return draw.apply(self, args);  // the other traces still draw
        });
    };
});
