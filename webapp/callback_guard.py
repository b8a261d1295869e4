"""The guard's view of a Dash callback request: the body bound by position to the callback's
declared outputs, inputs and state, with each value's declared type checked.

Dash calls a callback with the body's inputs and state *by position*; the guard reads the same
positions (never "the first input with this id"), so what it checks is what the callback gets.
Per-callback dependency lists are built once per output string and cached on the app.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask

from netlens.storage.models import MAX_ID
from netlens.webapp.authz import (
    PAGES_CALLBACK_PREFIX,
    RUN_ATTRIBUTE,
    allows,
    declared_kind,
    pattern_key_kind,
    rule_of,
)

WILDCARDS = ("ALL", "ALLSMALLER", "MATCH")
SCALARS = (str, int, float, bool)
MAX_CHANGED = 500  # changedPropIds: more than any page has inputs


class BadCallback(ValueError):
    """A body that does not fit the callback it names (the guard answers 400)."""


@dataclass(frozen=True)
class Dep:
    """One declared output, input or state: a plain id (str) or a pattern (dict)."""

    id: str | dict
    property: str
    many: bool  # ALL / ALLSMALLER: the renderer sends a list of matches
    kind: str | None  # the declared type of its value (authz.declare_kind), if any

    @classmethod
    def parse(cls, id_text: str, prop: str) -> Dep:
        if id_text.startswith("{"):
            pattern = {
                k: (v[0] if isinstance(v, list) and v and v[0] in WILDCARDS else v)
                for k, v in json.loads(id_text).items()
            }
            many = any(v in ("ALL", "ALLSMALLER") for v in pattern.values())
            return cls(pattern, prop, many, declared_kind(pattern.get("type"), prop))
        return cls(id_text, prop, False, declared_kind(id_text, prop))

    def matches(self, item: Any) -> bool:
        if not isinstance(item, dict) or item.get("property") != self.property:
            return False
        if isinstance(self.id, str):
            return item.get("id") == self.id
        sent = item.get("id")
        if not isinstance(sent, dict) or sent.keys() != self.id.keys():
            return False
        return all(
            _is_key(sent[k], self.id.get("type"), k) if v in WILDCARDS else sent[k] == v
            for k, v in self.id.items()
        )


@dataclass(frozen=True)
class CallbackSpec:
    output: str
    outputs: tuple[Dep, ...]
    is_multi: bool
    inputs: tuple[Dep, ...]
    state: tuple[Dep, ...]
    fn: Callable
    access: str | None
    run_at: int | None  # position (inputs then state) of the run id an "owner" rule checks
    is_on_click: bool

    def position(self, component_id: str, prop: str) -> int:
        for n, dep in enumerate(self.inputs + self.state):
            if dep.id == component_id and dep.property == prop:
                return n
        raise LookupError(f"{self.output}: no input or state {component_id}.{prop}")


@dataclass(frozen=True)
class Bound:
    """A body checked against its callback: values by position (inputs, then state)."""

    spec: CallbackSpec
    values: tuple[Any, ...]
    triggered: tuple[Any, ...]  # the values of the inputs named in changedPropIds


def _output_deps(output: str) -> tuple[tuple[Dep, ...], bool]:
    is_multi = output.startswith("..") and output.endswith("..")
    parts = output[2:-2].split("...") if is_multi else [output]
    return tuple(Dep.parse(*p.rsplit(".", 1)) for p in parts), is_multi


def build_spec(output: str, entry: dict) -> CallbackSpec:
    fn = entry["callback"]
    outputs, is_multi = _output_deps(output)
    spec = CallbackSpec(
        output,
        outputs,
        is_multi,
        tuple(Dep.parse(d["id"], d["property"]) for d in entry["inputs"]),
        tuple(Dep.parse(d["id"], d["property"]) for d in entry.get("state", [])),
        fn,
        "member" if output.startswith(PAGES_CALLBACK_PREFIX) else rule_of(fn),
        None,
        getattr(fn, "__netlens_on_click__", False),
    )  # routing: then the page's own rule
    run = getattr(fn, RUN_ATTRIBUTE, None)
    if isinstance(run, tuple):
        object.__setattr__(spec, "run_at", spec.position(*run))
    return spec


class Registry:
    """The specs of one app's server-side callbacks, built on first use (Dash completes its
    callback map on the first request), one per output string."""

    def __init__(self, callback_map: dict):
        self.callback_map = callback_map
        self.cache: dict[str, CallbackSpec] = {}

    def get(self, output: str) -> CallbackSpec | None:
        spec = self.cache.get(output)
        if spec is None:
            entry = self.callback_map.get(output)
            if entry is None or "callback" not in entry:
                return None  # unknown, or a clientside callback: never cached (no growth)
            spec = self.cache[output] = build_spec(output, entry)
        return spec


# ---- binding a body -------------------------------------------------------------------------


def _bind_one(dep: Dep, item: Any, where: str) -> Any:
    """The value (or, for ALL/ALLSMALLER, the list of values) `item` carries for `dep`."""
    if dep.many:
        if not isinstance(item, list) or not all(dep.matches(i) for i in item):
            raise BadCallback(f"{where}: expected a list of {dep.id}.{dep.property}")
        # each component once: with two values for one id, Dash's trigger and ours could differ
        if len({json.dumps(i["id"], sort_keys=True) for i in item}) != len(item):
            raise BadCallback(f"{where}: the same {dep.id} twice")
        values = [i.get("value") for i in item]
        for value in values:
            check_kind(dep, value, where)
        return values
    if not dep.matches(item):
        raise BadCallback(f"{where}: expected {dep.id}.{dep.property}")
    value = item.get("value")
    check_kind(dep, value, where)
    return value


def _bind_list(deps: tuple[Dep, ...], items: Any, name: str) -> list[Any]:
    if not isinstance(items, list) or len(items) != len(deps):
        raise BadCallback(f"{name}: expected {len(deps)} entries, in the declared order")
    return [
        _bind_one(dep, item, f"{name}[{n}]")
        for n, (dep, item) in enumerate(zip(deps, items, strict=True))
    ]


def _check_outputs(spec: CallbackSpec, outputs: Any) -> None:
    if spec.is_multi:
        if not isinstance(outputs, list) or len(outputs) != len(spec.outputs):
            raise BadCallback(f"outputs: expected the {len(spec.outputs)} outputs of {spec.output}")
    else:
        outputs = [outputs]
    for n, (dep, item) in enumerate(zip(spec.outputs, outputs, strict=True)):
        if dep.many:
            if not isinstance(item, list) or not all(dep.matches(i) for i in item):
                raise BadCallback(f"outputs[{n}]: not an output of this callback")
        elif not dep.matches(item):
            raise BadCallback(f"outputs[{n}]: not an output of this callback")


def _prop_ids(deps: tuple[Dep, ...], items: list) -> dict[str, int]:
    from dash._utils import stringify_id

    names = {}
    for n, (dep, item) in enumerate(zip(deps, items, strict=True)):
        for one in item if dep.many else [item]:
            names[f"{stringify_id(one['id'])}.{dep.property}"] = n
    return names


def bind(spec: CallbackSpec, body: dict) -> Bound:
    """Check `body` against `spec` by position; raises BadCallback."""
    _check_outputs(spec, body.get("outputs"))
    inputs = _bind_list(spec.inputs, body.get("inputs"), "inputs")
    state = _bind_list(spec.state, body.get("state", []), "state")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or len(changed) > MAX_CHANGED:
        raise BadCallback("changedPropIds: expected a list of the inputs that changed")
    names = _prop_ids(spec.inputs, body["inputs"])
    if not all(isinstance(c, str) and c in names for c in changed):
        raise BadCallback("changedPropIds: names something that is not an input of this callback")
    triggered = tuple(_triggered_value(body["inputs"][names[c]], c) for c in changed)
    return Bound(spec, tuple(inputs + state), triggered)


def _triggered_value(item: Any, prop_id: str) -> Any:
    if not isinstance(item, list):
        return item.get("value")
    from dash._utils import stringify_id

    return next(
        (i.get("value") for i in item if f"{stringify_id(i['id'])}.{i['property']}" == prop_id),
        None,
    )


# ---- declared value types -------------------------------------------------------------------


def _is_key(value: Any, pattern_type: Any, key: str) -> bool:
    """Whether `value` may fill wildcard `key` of a pattern-matching id (declared kinds in
    authz.PATTERN_KEY_KINDS)."""
    return isinstance(value, SCALARS) and CHECKS[pattern_key_kind(pattern_type, key)][0](value)


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "count": (
        lambda v: v is None or _is_int(v, 0, 2**31 - 1),
        "a click or tick count (an integer from 0 to 2^31-1, or null)",
    ),
    "id": (lambda v: _is_int(v, 1, MAX_ID), "an id (a positive integer)"),
    "text": (
        lambda v: v is None or (isinstance(v, str) and len(v) <= 4096),
        "text of at most 4096 characters, or null",
    ),
    "long_text": (
        lambda v: v is None or (isinstance(v, str) and len(v) <= 100_000),
        "text of at most 100000 characters, or null",
    ),
    "flag": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "index": (
        lambda v: v is None or _is_int(v, 0, 2**31 - 1),
        "a position (an integer from 0 to 2^31-1, or null)",
    ),
    "int": (lambda v: _is_int(v, -(2**31), 2**31 - 1), "an integer from -2^31 to 2^31-1"),
    "id_or_none": (lambda v: v is None or _is_int(v, 1, MAX_ID), "an id, or null"),
    "ids": (
        lambda v: (
            v is None
            or (isinstance(v, list) and len(v) <= 10_000 and all(_is_int(i, 1, MAX_ID) for i in v))
        ),
        "a list of at most 10000 ids, or null",
    ),
    "ints": (
        lambda v: (
            v is None
            or (
                isinstance(v, list)
                and len(v) <= 100_000
                and all(_is_int(i, -(2**63), 2**63 - 1) for i in v)
            )
        ),
        "a list of at most 100000 integers, or null",
    ),
    "texts": (
        lambda v: (
            v is None
            or (
                isinstance(v, list)
                and len(v) <= 100
                and all(isinstance(i, str) and len(i) <= 200 for i in v)
            )
        ),
        "a list of at most 100 short texts, or null",
    ),
    "object": (lambda v: v is None or isinstance(v, dict), "an object, or null"),
    "list": (lambda v: v is None or isinstance(v, list), "a list, or null"),
}


def check_kind(dep: Dep, value: Any, where: str) -> None:
    if dep.kind is None:
        return
    is_ok, what = CHECKS[dep.kind]
    if not is_ok(value):
        raise BadCallback(f"{where}: {dep.id}.{dep.property} must be {what}")


# ---- pages check their own rule -------------------------------------------------------------


def guard_page_layouts(registry: dict) -> None:
    """Wrap every registered page's layout so that it checks the page's `access` against the
    request's actor itself (defence in depth behind the guard: a page reached by any route
    renders nothing for someone its rule refuses) and takes only the keyword arguments it
    declares (Dash passes the query string's names as arguments)."""
    for page in registry.values():
        layout = page.get("layout")
        if not getattr(layout, "__netlens_guarded__", False):
            page["layout"] = _guarded(layout, page.get("access"))


def _guarded(layout: Any, access: str | None) -> Callable:
    params = inspect.signature(layout).parameters if callable(layout) else {}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())

    @functools.wraps(layout if callable(layout) else _guarded)
    def guarded_layout(**kwargs):
        from dash import html

        actor = flask.g.get("netlens_actor") if flask.has_request_context() else None
        if actor is None or not allows(access, logged_in=True, is_admin=actor.is_admin):
            return html.Div(
                html.P("You may not see this page.", className="text-danger"),
                className="page-refused",
            )
        if not callable(layout):
            return layout
        # a repeated query parameter arrives as a list: no layout takes one
        kwargs = {
            k: v for k, v in kwargs.items() if isinstance(v, str) and (takes_any or k in params)
        }
        return layout(**kwargs)

    guarded_layout.__netlens_guarded__ = True  # type: ignore[attr-defined]
    return guarded_layout
