"""Conditional GETs of the REST API (docs/api.md, "ETags"): an `ETag` on a run's reads, and
`If-None-Match` answered `304 Not Modified` (RFC 9110, sections 8.8.3 and 13.1.2).

Every tag is **weak** (`W/"..."`): it names what the answer says, not its bytes. A tag is
either *derived* from the run's state, before anything recorded is read (metrics, tensors,
a tensor's values, the export: `derived`), or the digest of the answer itself when the
answer is a few rows of metadata that are read anyway (the run with its job, the analyses:
`of_body`). A derived tag covers every column of the run's row (status, counters
`epochs_recorded`/`last_epoch`/`recorded_bytes`, name, notes, tags, times...) and its job's
attempt: recording epochs moves the counters in the same transaction as the records, and a
retry or requeue (which may drop records) makes a new attempt. The route, its query
parameters and the representation (JSON or .npy) are part of it, and so is the server's
version. Weak, because equal tags mean equal content, not equal bytes: the .npz export's zip
members carry the time they were written. A weak tag is all `If-None-Match` needs (it uses
the weak comparison); NetLens serves no ranges, where a strong one would matter.

`If-None-Match` is `*` or a list of entity tags; a value that is neither is ignored (the
answer is a 200), one over MAX_IF_NONE_MATCH characters is refused (400). Preconditions are
evaluated after every check that could answer an error (unknown run or tensor, bad
parameter, a JSON answer too large), as RFC 9110 section 13.2.1 requires.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib import metadata
from typing import Any

import flask
from flask import request

from netlens.storage.runs import RunInfo
from netlens.webapp.openapi import MAX_IF_NONE_MATCH  # characters: about 90 NetLens tags

try:  # in every derived tag: a new version of the server may answer differently
    SERVER_VERSION = metadata.version("netlens")
except metadata.PackageNotFoundError:  # (a source tree that was not installed)
    SERVER_VERSION = "unknown"

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE ; etagc = %x21 / %x23-7E / obs-text
_ENTITY_TAG = re.compile(r'(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"')
_OWS = re.compile(r"[ \t]*")


class HeaderTooLong(ValueError):
    """If-None-Match over MAX_IF_NONE_MATCH characters (webapp/api.py answers 400)."""

    def __init__(self, length: int):
        super().__init__(
            f"If-None-Match: {length:,} characters is over the limit of {MAX_IF_NONE_MATCH:,}"
        )


def parse_if_none_match(value: str | None) -> str | frozenset[str] | None:
    """`"*"`, the opaque tags listed (weak or not: the weak comparison ignores `W/`), or None
    when there is no header or it is malformed (then it is ignored). Empty list elements are
    allowed (RFC 9110, 5.6.1)."""
    if value is None:
        return None
    if len(value) > MAX_IF_NONE_MATCH:
        raise HeaderTooLong(len(value))
    text = value.strip(" \t")
    if text == "*":
        return "*"
    tags: set[str] = set()
    pos, expect_tag = 0, True
    while pos < len(text):
        if text[pos] == ",":
            pos, expect_tag = _OWS.match(text, pos + 1).end(), True
            continue
        if not expect_tag:  # two tags without a comma between them
            return None
        found = _ENTITY_TAG.match(text, pos)
        if found is None:
            return None
        tags.add(found.group(1))
        pos, expect_tag = _OWS.match(text, found.end()).end(), False
    return frozenset(tags) if tags else None


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, separators=(",", ":"), default=str, allow_nan=True)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def derived(info: RunInfo, attempt: int | None, route: str, **params: Any) -> str:
    """The weak tag of a run's `route` answer with these (normalised) parameters, from the
    run's row and its job's attempt alone: no record is read."""
    state = info.to_dict()
    return f'W/"{info.id}-{_digest(SERVER_VERSION, route, attempt, state, sorted(params.items()))}"'


def of_body(run_id: int, route: str, body: bytes) -> str:
    """The weak tag of an answer read anyway (a few metadata rows): its digest."""
    digest = hashlib.blake2b(body, digest_size=12, person=route.encode()[:16]).hexdigest()
    return f'W/"{run_id}-{digest}"'


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def matches(tag: str) -> bool:
    """Whether the request's If-None-Match matches `tag` (the weak comparison): its
    condition is then false, and a GET or HEAD answers 304. HeaderTooLong (api.py: 400)
    for one over MAX_IF_NONE_MATCH characters."""
    wanted = parse_if_none_match(request.headers.get("If-None-Match"))
    if wanted is None:
        return False
    return wanted == "*" or _opaque(tag)[1:-1] in wanted


def not_modified(tag: str, headers: dict[str, str] | None = None) -> flask.Response | None:
    """A 304 (no body; the tag and the `headers` a 200 would carry, e.g. Vary) when the
    request's If-None-Match matches `tag`; None otherwise (answer as usual, with `tagged`)."""
    if request.method not in ("GET", "HEAD") or not matches(tag):
        return None
    response = flask.current_app.response_class(status=304)
    response.headers.pop("Content-Type", None)
    return tagged(response, tag, headers)


def tagged(
    response: flask.Response, tag: str, headers: dict[str, str] | None = None
) -> flask.Response:
    response.headers["ETag"] = tag
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
