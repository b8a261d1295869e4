"""The run filter language (docs/filter.md): `dataset = digits and val_accuracy > 0.95 and
tag:preset and optimizer.learning_rate < 0.01 and created > 2026-11-01`.

A hand-written tokenizer and recursive-descent parser turn the text into a small tree
(`parse`), and the tree into one SQLAlchemy condition over `runs` (`condition`), with every
value a BOUND parameter: no SQL is ever built from the text, nothing of it is evaluated.
Spec paths read the run's JSON spec through SQLAlchemy's JSON path indexing, guarded by the
JSON type of the value there (so `optimizer.name > 3` is false, never a cast error), which
gives the same answers on SQLite and PostgreSQL.

Semantics: a comparison with a missing value (no final metric yet, no such spec field, a
value of another type) is false, and `not` is its complement. Text `=` is exact, `~` (or
`contains`) a case-insensitive substring. A date without a time stands for its whole day
(UTC): `created = 2026-11-01` is that day, `created > 2026-11-01` from the next one on.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    Float,
    String,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import Boolean

from netlens.storage.models import RUN_STATUSES, Run, User
from netlens.storage.spec import ExperimentSpec

MAX_LENGTH = 1000  # characters of an expression
MAX_DEPTH = 20  # nested parentheses and `not`s
MAX_TERMS = 50  # comparisons and tag tests
MAX_PATH_PARTS = 4  # optimizer.learning_rate is 2
MIN_YEAR, MAX_YEAR = 1000, 9998  # of dates
SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FilterError(ValueError):
    """A filter expression that cannot be read: `message` names the faulty token and its
    column (`position`, 1-based)."""

    def __init__(self, message: str, position: int):
        super().__init__(f"filter: {message}")
        self.message, self.position = message, position


# ---- fields ----------------------------------------------------------------------------------

# name -> (kind, column); kinds: text, number, date
COLUMNS: dict[str, tuple[str, Any]] = {
    "id": ("number", Run.id),
    "name": ("text", Run.name),
    "status": ("text", Run.status),
    "dataset": ("text", Run.dataset),
    "architecture": ("text", Run.architecture),
    "optimizer": ("text", Run.optimizer),
    "owner": ("text", User.name),  # through a subquery on users: see _owner
    "epochs": ("number", Run.epochs_total),
    "epoch": ("number", Run.last_epoch),
    "train_loss": ("number", Run.final_train_loss),
    "train_accuracy": ("number", Run.final_train_accuracy),
    "val_loss": ("number", Run.final_val_loss),
    "val_accuracy": ("number", Run.final_val_accuracy),
    "created": ("date", Run.created_at),
    "started": ("date", Run.started_at),
    "finished": ("date", Run.finished_at),
}
# short names of spec paths
ALIASES = {
    "seed": "training.seed",
    "learning_rate": "optimizer.learning_rate",
    "lr": "optimizer.learning_rate",
    "batch_size": "training.batch_size",
}


def _spec_paths(model: type[BaseModel], prefix: str = "") -> dict[str, type[BaseModel] | None]:
    """Every dotted path of the spec's fields: scalar leaves (None) and sections (their
    model), lists left out (a comparison reads one value)."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, info in model.model_fields.items():
        union = get_origin(info.annotation) in (Union, UnionType)
        kinds = get_args(info.annotation) if union else (info.annotation,)
        if any(get_origin(k) in (list, tuple) or k in (list, tuple) for k in kinds):
            continue
        section = next((k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)), None)
        out[prefix + name] = section
        if section is not None:
            out.update(_spec_paths(section, f"{prefix}{name}."))
    return out


SPEC_PATHS = _spec_paths(ExperimentSpec)
SPEC_LEAVES = tuple(p for p, section in SPEC_PATHS.items() if section is None)
FIELD_NAMES = (*COLUMNS, "tag:NAME", *ALIASES)
SPEC_EXAMPLE = "optimizer.learning_rate"


# ---- tokens ----------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<colon>:)
  | (?P<op><=|>=|!=|==|=|<|>|~)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?)
  | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[^\W\d][\w.\-]*)
    """,
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "contains", "true", "false"}
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")


@dataclass(frozen=True)
class Token:
    kind: str  # lparen rparen colon op string datetime number word end
    text: str  # as written
    column: int  # 1-based
    value: Any = None  # strings unquoted, numbers parsed

    def shown(self) -> str:
        return "the end" if self.kind == "end" else f'"{_short(self.text)}"'


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tokenize(text: str) -> list[Token]:
    if "\x00" in text:
        column = text.index("\x00") + 1
        raise FilterError(f"a NUL character at column {column}", column)
    tokens, at = [], 0
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None:
            if text[at] in "\"'":
                raise FilterError(f"unterminated string starting at column {at + 1}", at + 1)
            raise FilterError(f'unexpected character "{text[at]}" at column {at + 1}', at + 1)
        kind, raw = match.lastgroup, match.group()
        if kind == "word" and raw.lower() == "contains":
            kind = "op"
        if kind != "space":
            tokens.append(Token(kind, raw, at + 1, _value(kind, raw, at + 1)))
        at = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _value(kind: str, raw: str, column: int) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if kind == "number":
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    if kind == "op":
        return {"==": "=", "contains": "~"}.get(raw.lower(), raw)
    if kind == "datetime":
        try:
            if "T" not in raw:
                moment: date = date.fromisoformat(raw)
            else:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except (ValueError, OverflowError):
            raise FilterError(
                f'"{_short(raw)}" at column {column} is not a valid date', column
            ) from None
        if not MIN_YEAR <= moment.year <= MAX_YEAR:  # (a day's end must exist too)
            raise FilterError(
                f'"{_short(raw)}" at column {column} is out of range (years {MIN_YEAR} to '
                f"{MAX_YEAR})",
                column,
            )
        return moment
    return None


# ---- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    field: str  # a COLUMNS name or "spec.<path>"
    op: str  # OPERATORS
    value: Any  # str, int, float, bool, date or datetime
    column: int


@dataclass(frozen=True)
class HasTag:
    tag: str


@dataclass(frozen=True)
class Not:
    node: Any


@dataclass(frozen=True)
class AllOf:
    nodes: tuple


@dataclass(frozen=True)
class AnyOf:
    nodes: tuple


class _Parser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.at = 0
        self.terms = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        if self.token.kind == "word" and self.token.text.lower() == word:
            self.at += 1
            return True
        return False

    def deeper(self, depth: int) -> int:
        """One level deeper, at the current token (a "(" or a `not`), within MAX_DEPTH."""
        if depth >= MAX_DEPTH:
            raise FilterError(
                f"too deeply nested at column {self.token.column} (limit {MAX_DEPTH})",
                self.token.column,
            )
        self.at += 1
        return depth + 1

    def expression(self, depth: int):
        nodes = [self.conjunction(depth)]
        while self.keyword("or"):
            nodes.append(self.conjunction(depth))
        return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))

    def conjunction(self, depth: int):
        nodes = [self.negation(depth)]
        while self.keyword("and"):
            nodes.append(self.negation(depth))
        return nodes[0] if len(nodes) == 1 else AllOf(tuple(nodes))

    def negation(self, depth: int):
        if self.token.kind == "word" and self.token.text.lower() == "not":
            return Not(self.negation(self.deeper(depth)))
        return self.primary(depth)

    def primary(self, depth: int):
        token = self.token
        if token.kind == "lparen":
            node = self.expression(self.deeper(depth))
            if self.token.kind != "rparen":
                raise FilterError(
                    f'expected ")" to close the "(" at column {token.column}, found '
                    f"{self.token.shown()} at column {self.token.column}",
                    self.token.column,
                )
            self.take()
            return node
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise FilterError(
                f'expected a field, "tag:", "not" or "(" at column {token.column}, found '
                f"{token.shown()}",
                token.column,
            )
        self.take()
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(
                f"too many comparisons at column {token.column} (limit {MAX_TERMS})", token.column
            )
        if token.text.lower() == "tag" and self.token.kind == "colon":
            self.take()
            value = self.take()
            if value.kind not in ("word", "string", "number"):
                raise FilterError(
                    f'expected a tag name after "tag:" at column {value.column}, found '
                    f"{value.shown()}",
                    value.column,
                )
            return HasTag(value.text if value.kind != "string" else value.value)
        field = self.field(token)
        op = self.take()
        if op.kind != "op":
            raise FilterError(
                f'expected an operator (= != < <= > >= ~ contains) after "{_short(token.text)}"'
                f" at column {op.column}, found {op.shown()}",
                op.column,
            )
        value = self.take()
        connective = value.kind == "word" and value.text.lower() in ("and", "or", "not")
        if connective or value.kind not in ("word", "string", "number", "datetime"):
            raise FilterError(
                f'expected a value after "{op.text}" at column {value.column}, found '
                f"{value.shown()}",
                value.column,
            )
        return _checked(field, op, value)

    def field(self, token: Token) -> str:
        name = ALIASES.get(token.text, token.text)
        if name in COLUMNS:
            return name
        path = name.removeprefix("spec.")
        if path.count(".") + 1 > MAX_PATH_PARTS:
            raise FilterError(
                f'spec path "{_short(path)}" at column {token.column} has {path.count(".") + 1}'
                f" parts (limit {MAX_PATH_PARTS})",
                token.column,
            )
        if not all(SEGMENT.fullmatch(part) for part in path.split(".")):
            raise FilterError(
                f'"{_short(token.text)}" at column {token.column} is not a field name '
                "(letters, digits and _, parts joined by dots)",
                token.column,
            )
        if SPEC_PATHS.get(path, "") is None:
            return "spec." + path
        if path in SPEC_PATHS:
            raise FilterError(
                f'spec field "{path}" at column {token.column} is a section, not a value '
                f"(its fields: {', '.join(_children(path))})",
                token.column,
            )
        parent = path.rpartition(".")[0]
        known = _children(parent) if parent in SPEC_PATHS else ()
        where = (
            f"{parent} has: {', '.join(known)}"
            if known
            else f"fields: {', '.join(FIELD_NAMES)}, or a spec path such as {SPEC_EXAMPLE}"
        )
        candidates = SPEC_LEAVES if "." in name else (*FIELD_NAMES, *SPEC_LEAVES)
        close = difflib.get_close_matches(name, candidates, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        raise FilterError(
            f'unknown field "{_short(token.text)}" at column {token.column} ({where}){hint}',
            token.column,
        )


def _children(section: str) -> list[str]:
    return [p.rpartition(".")[2] for p in SPEC_PATHS if p.rpartition(".")[0] == section]


def _checked(field: str, op: Token, value: Token) -> Compare:
    """The comparison, its value read as the field's kind (a word `true`/`false` is a
    boolean for spec paths; any other word is text)."""
    kind = COLUMNS[field][0] if field in COLUMNS else "spec"
    where = f'"{_short(value.text)}" at column {value.column}'
    if kind == "number":
        if value.kind != "number":
            raise FilterError(f"{field} is a number; {where} is not", value.column)
        if op.value == "~":
            raise FilterError(
                f'"~" at column {op.column} needs text; {field} is a number', op.column
            )
        return Compare(field, op.value, value.value, op.column)
    if kind == "date":
        if value.kind != "datetime" and not (value.kind == "string" and _is_date(value.value)):
            raise FilterError(
                f"{field} is a date; {where} is not a date (2026-11-01 or 2026-11-01T09:30:00Z)",
                value.column,
            )
        if op.value == "~":
            raise FilterError(f'"~" at column {op.column} needs text; {field} is a date', op.column)
        moment = (
            value.value
            if value.kind == "datetime"
            else _value("datetime", value.value, value.column)
        )
        return Compare(field, op.value, moment, op.column)
    if kind == "text":
        if op.value not in ("=", "!=", "~"):
            raise FilterError(
                f'operator "{op.text}" at column {op.column} does not apply to text field '
                f"{field} (use = != or ~)",
                op.column,
            )
        text = value.value if value.kind == "string" else value.text
        if field == "status" and op.value != "~" and text not in RUN_STATUSES:
            raise FilterError(
                f"status {where} is not one of {', '.join(RUN_STATUSES)}", value.column
            )
        return Compare(field, op.value, text, op.column)
    # a spec path: the value's own type says how the stored one is read
    if value.kind == "number":
        typed: Any = value.value
    elif value.kind == "word" and value.text.lower() in ("true", "false"):
        typed = value.text.lower() == "true"
    else:
        typed = value.value if value.kind == "string" else value.text
    if isinstance(typed, bool) and op.value not in ("=", "!="):
        raise FilterError(
            f'operator "{op.text}" at column {op.column} does not compare true/false', op.column
        )
    if op.value == "~" and not isinstance(typed, str):
        raise FilterError(f'"~" at column {op.column} needs a text value, not {where}', op.column)
    return Compare(field, op.value, typed, op.column)


def _is_date(text: str) -> bool:
    match = TOKEN.fullmatch(text)
    return match is not None and match.lastgroup == "datetime"


def parse(text: str):
    """The tree of a filter expression, or None for an empty one; FilterError otherwise."""
    if not isinstance(text, str):
        raise FilterError("the expression must be text", 1)
    if len(text) > MAX_LENGTH:
        raise FilterError(
            f"the expression is {len(text)} characters long (limit {MAX_LENGTH})", MAX_LENGTH + 1
        )
    parser = _Parser(text)
    if parser.token.kind == "end":
        return None
    node = parser.expression(0)
    token = parser.token
    if token.kind == "rparen":
        raise FilterError(f'unmatched ")" at column {token.column}', token.column)
    if token.kind != "end":
        raise FilterError(
            f'expected "and", "or" or the end at column {token.column}, found {token.shown()}',
            token.column,
        )
    return node


# ---- SQL -------------------------------------------------------------------------------------


class _JsonTypeIs(ColumnElement[bool]):
    """True where the spec's value at `path` is JSON of `kind` (number, string, boolean):
    json_type() on SQLite, json_typeof() on PostgreSQL, the path a bound parameter."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, column, path: tuple[str, ...], kind: str):
        self.column, self.path, self.kind = column, path, kind


_SQLITE_KINDS = {"number": ("integer", "real"), "string": ("text",), "boolean": ("true", "false")}


@compiles(_JsonTypeIs, "sqlite")
def _json_type_sqlite(element, compiler, **kw):
    path = "$" + "".join(f'."{part}"' for part in element.path)
    expr = func.json_type(element.column, literal(path, String)).in_(_SQLITE_KINDS[element.kind])
    return compiler.process(expr, **kw)


@compiles(_JsonTypeIs)
def _json_type_default(element, compiler, **kw):  # PostgreSQL
    expr = func.json_typeof(element.column[element.path]) == element.kind
    return compiler.process(expr, **kw)


def _spec_value(path: tuple[str, ...], value: Any):
    """The spec's value at `path` as the type of `value`, NULL where it is of another type."""
    indexed = Run.spec[path]
    if isinstance(value, bool):
        kind, read = "boolean", indexed.as_boolean()
    elif isinstance(value, int | float):
        kind, read = "number", indexed.as_float()
    else:
        kind, read = "string", indexed.as_string()
    return case((_JsonTypeIs(Run.spec, path, kind), read), else_=None)


def _compare(left, op: str, value: Any):
    if op == "~":
        return left.icontains(value, autoescape=True)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a float parameter: an integer column's type would cast it to INTEGER on
        # PostgreSQL, an error for one out of its range (id > 3000000000)
        value = literal(float(value), Float())
    return {
        "=": left.__eq__,
        "!=": left.__ne__,
        "<": left.__lt__,
        "<=": left.__le__,
        ">": left.__gt__,
        ">=": left.__ge__,
    }[op](value)


def _day(column, op: str, day: date):
    """A date without a time: its whole UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    return {
        "=": and_(column >= start, column < end),
        "!=": or_(column < start, column >= end),
        "<": column < start,
        "<=": column < end,
        ">": column >= end,
        ">=": column >= start,
    }[op]


def _sql(node) -> ColumnElement[bool]:
    if isinstance(node, AllOf):
        return and_(*[_sql(n) for n in node.nodes])
    if isinstance(node, AnyOf):
        return or_(*[_sql(n) for n in node.nodes])
    if isinstance(node, Not):  # a comparison with a missing value (NULL) is false: not is true
        return not_(func.coalesce(_sql(node.node), false()))
    if isinstance(node, HasTag):  # tags are a JSON list of strings: match the quoted string
        return func.cast(Run.tags, String).contains(json.dumps(node.tag), autoescape=True)
    if node.field.startswith("spec."):
        return _compare(
            _spec_value(tuple(node.field[5:].split(".")), node.value), node.op, node.value
        )
    kind, column = COLUMNS[node.field]
    if node.field == "owner":
        return Run.owner_id.in_(select(User.id).where(_compare(User.name, node.op, node.value)))
    if kind == "date" and not isinstance(node.value, datetime):
        return _day(column, node.op, node.value)
    return _compare(column, node.op, node.value)


def condition(text: str | None) -> ColumnElement[bool] | None:
    """The SQL condition over `runs` that a filter expression says (None: no filter, for an
    empty or blank one); FilterError when it cannot be read."""
    node = parse(text or "")
    return None if node is None else _sql(node)
