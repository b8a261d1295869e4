// NetLens: the new-experiment page's file upload (webapp/pages/new.py, webapp/upload_route.py).
//
// dcc.Upload reads the chosen file into a data URL in the browser. Sending that through a Dash
// callback would make every callback body as large as an upload (64 MB and more), so this
// clientside callback posts the file's bytes to POST /uploads instead, and fills the form's
// dataset.upload with the id the server answers (or shows the server's error message).
(function () {
    'use strict';

    function bytesOf(dataUrl) {
        var comma = dataUrl.indexOf(',');
        var text = atob(dataUrl.slice(comma + 1));
        var bytes = new Uint8Array(text.length);
        for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
        return bytes;
    }

    function uploadFile(contents, filename, dataset) {
        var skip = window.dash_clientside.no_update;
        if (!contents) { return [skip, skip, skip]; }
        var query = '?name=' + encodeURIComponent(filename || '') +
            '&dataset=' + encodeURIComponent(dataset || '');
        var failed = function (message) { return [skip, message, 'small text-danger']; };
        var body;
        try {
            body = bytesOf(contents);
        } catch (e) {
            return failed('file: the browser could not read the file');
        }
        return fetch('/uploads' + query, {
            method: 'POST', body: body, credentials: 'same-origin',
            headers: {'Content-Type': 'application/octet-stream'}
        }).then(function (response) {
            return response.json().catch(function () {
                return {error: 'file: the server refused the upload (HTTP ' +
                    response.status + ')'};
            });
        }).then(function (answer) {
            if (answer.id === undefined) { return failed(answer.error || 'file: refused'); }
            return [answer.id, answer.message, 'small text-success'];
        }, function () {
            return failed('file: the upload did not reach the server; try again');
        });
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside);
    window.dash_clientside.netlens = Object.assign({}, window.dash_clientside.netlens,
                                                   {uploadFile: uploadFile});
}());
