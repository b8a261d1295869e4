"""The OpenAPI 3.1 description of the REST API (/api/v1; /api is its alias), built from one
table of routes and the pydantic models below; webapp/api.py validates request bodies with
the same models.

`document()` returns the whole description (served at /api/v1/openapi.json and its alias
/api/openapi.json). Schemas come from `model_json_schema` (JSON Schema 2020-12, which
OpenAPI 3.1 uses as is), with references rewritten to `#/components/schemas/...`; the
experiment spec's schema is the real `storage.spec.ExperimentSpec`'s. Every operation lists
each status it can answer with the ApiError body. tests/unit/test_openapi.py checks that
every /api route of the app is described here (with those statuses) and that the document
validates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, WithJsonSchema
from pydantic.json_schema import models_json_schema

from netlens.storage import admin as admin_store
from netlens.storage.models import ANALYSIS_KINDS, JOB_STATES, MAX_ID, RUN_STATUSES
from netlens.storage.presets import preset_names
from netlens.storage.run_filter import MAX_LENGTH as MAX_FILTER_LENGTH
from netlens.storage.runs import SORTABLE
from netlens.storage.spec import ExperimentSpec
from netlens.storage.sweep import MAX_SWEEP_AXES, MAX_SWEEP_RUNS
from netlens.storage.uploads import KINDS as UPLOAD_KINDS
from netlens.storage.users import NAME_PATTERN
from netlens.storage.workers import MAX_LISTED as MAX_WORKERS_LISTED
from netlens.webapp.comparison import MAX_RUNS as MAX_COMPARED
from netlens.webapp.csv_export import MAX_CSV_ROWS

API_VERSION = "1"
PREFIX = "/api/v1"  # the documented prefix; /api serves the same routes (an alias)
# ids are 32-bit primary keys (storage.models.MAX_ID): path ids outside 1..MAX_ID match no route
REF = "#/components/schemas/{model}"
MAX_LIMIT, DEFAULT_LIMIT = 500, 50
MAX_BODY_BYTES = 1_048_576  # 1 MiB: a spec is a few kB
TOKEN_NAME_MAX = 100
MAX_JSON_VALUES = 1_000_000  # a tensor's values answered as JSON; larger ones as .npy
# Text in query and path parameters (and names stored): PostgreSQL cannot hold or compare a
# NUL, so the server refuses it
NO_NUL = "^[^\\x00]*$"
GROUP_NAME_MAX = 200  # run_groups.name
SWEEP_FIELD_MAX, SWEEP_TEXT_MAX = 100, 200  # a swept field's path; a swept text value
UPLOAD_NAME_MAX = 255  # storage.uploads.MAX_NAME: the file's name, shown only
MAX_METRICS = 16  # metric names in one GET /compare/metrics
MAX_WORKERS = 1000  # workers listed by GET /admin/workers (storage.workers.list_workers)

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "diverged"]
assert set(RunStatus.__args__) == set(RUN_STATUSES)  # kept in step with storage
PresetName = Annotated[str, WithJsonSchema({"type": "string", "enum": preset_names()})]


def _submit_schema(schema: dict[str, Any]) -> None:
    """Exactly one of `spec` and `preset` (`{}` is invalid by the schema as by the server);
    the fields are optional but never null."""
    for prop in schema["properties"].values():
        prop.pop("default", None)
    schema["oneOf"] = [{"required": ["spec"]}, {"required": ["preset"]}]


# In answers (serialization schemas): an object, described (a $ref is for validation schemas)
SpecAnswer = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "description": "An experiment spec (ExperimentSpec)."}),
]


# ---- request bodies (validated by webapp/api.py) ---------------------------------------------


class SubmitRequest(BaseModel):
    """Either a whole `spec`, or a `preset` with optional `overrides`: a nested object of spec
    fields (e.g. {"training": {"epochs": 50}}) or dotted paths ({"training.epochs": 50})."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_submit_schema)
    # optional, not nullable: None only when left out (pydantic does not validate defaults);
    # the "exactly one of spec and preset" of the schema's oneOf is checked by api._spec_of
    spec: Annotated[
        dict[str, Any],
        WithJsonSchema({"allOf": [{"$ref": REF.format(model="ExperimentSpec")}]}),
    ] = Field(default=None, description="A whole experiment spec (docs/spec.md).")
    preset: PresetName = Field(default=None, description="A preset's name.")
    overrides: dict[str, Any] = Field(
        default=None, description="Spec fields over the preset's (or the spec's)."
    )


class EmptyRequest(BaseModel):
    """Routes that take no fields (cancel, delete): an empty body, or {}."""

    model_config = ConfigDict(extra="forbid")


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_scratch: bool = Field(
        default=False, strict=True, description="Drop the recorded epochs and start again."
    )


class UserChange(BaseModel):
    """What an admin may change of an account (as the admin page and `netlens users
    disable/enable` do): whether it is disabled. Not of their own account (409)."""

    model_config = ConfigDict(extra="forbid")
    disabled: bool = Field(
        strict=True,
        description="true: no login, every session ends and every API token is revoked "
        "(enabling again brings no token back); false: may log in again.",
    )


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=TOKEN_NAME_MAX,
        description="What the token is for (shown in token lists).",
    )


SweepValue = Annotated[
    StrictInt
    | StrictFloat
    | Annotated[StrictStr, Field(max_length=SWEEP_TEXT_MAX, pattern=NO_NUL)],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "maxLength": SWEEP_TEXT_MAX, "pattern": NO_NUL},
            ]
        }
    ),
]


class SweepAxis(BaseModel):
    """One swept field and its values (as GET /groups/{group_id} lists a sweep's axes)."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(
        min_length=1,
        max_length=SWEEP_FIELD_MAX,
        pattern=NO_NUL,
        description="A spec field (dotted path: optimizer.learning_rate, model.hidden.0.units, "
        "or model.width for every hidden layer's units); not name, tags, version, "
        "dataset.upload or dataset.path.",
    )
    values: list[SweepValue] = Field(
        min_length=1,
        max_length=MAX_SWEEP_RUNS,
        description="Its values, each once: numbers, or the names of a choice (e.g. sgd, adam).",
    )


def _sweep_schema(schema: dict[str, Any]) -> None:
    """As a submission's, with an example (the contract fuzzer's examples phase sends it)."""
    _submit_schema(schema)
    schema["examples"] = [
        {
            "preset": "xor",
            "overrides": {"training.epochs": 3},
            "axes": [{"field": "training.seed", "values": [0, 1]}],
            "name": "seeds",
        }
    ]


class SweepRequest(BaseModel):
    """A sweep: the base spec (a whole `spec`, or a `preset` with optional `overrides`, as
    for POST /runs) and 1 to 3 axes; one run per point of the grid."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_sweep_schema)
    spec: Annotated[
        dict[str, Any],
        WithJsonSchema({"allOf": [{"$ref": REF.format(model="ExperimentSpec")}]}),
    ] = Field(default=None, description="The base spec (docs/spec.md).")
    preset: PresetName = Field(default=None, description="A preset's name (the base spec).")
    overrides: dict[str, Any] = Field(
        default=None, description="Spec fields over the preset's (or the spec's)."
    )
    axes: list[SweepAxis] = Field(
        min_length=1,
        max_length=MAX_SWEEP_AXES,
        description=f"1 to {MAX_SWEEP_AXES} axes; the first is outermost. At most "
        f"{MAX_SWEEP_RUNS} runs in all (members: their `sweep_runs` limit).",
    )
    name: str = Field(
        default=None,
        min_length=1,
        max_length=GROUP_NAME_MAX,
        pattern=NO_NUL,
        description="The group's name (default: the base spec's name).",
    )


def _no_null_default(schema: dict[str, Any]) -> None:
    """Optional fields that are never null: no `default: null` in the schema."""
    for prop in schema["properties"].values():
        if prop.get("default", 0) is None:
            del prop["default"]


class AnalysisRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_default)
    epoch: int = Field(
        default=None,
        strict=True,
        ge=0,
        le=2**31 - 1,
        description="A recorded epoch (default: the last recorded one).",
    )
    methods: list[Literal["tsne", "umap"]] = Field(
        default_factory=list,
        max_length=2,
        description="Also these projections of the epoch, computed only when asked for "
        "(seconds per layer; the epoch's analysis projects by PCA only).",
    )


# ---- responses ---------------------------------------------------------------------------------


class ApiError(BaseModel):
    error: str = Field(description="What went wrong; names the field and the limit.")
    fields: list[str] = Field(
        default_factory=list, description="The request fields at fault (dotted spec paths)."
    )
    errors: list[str] | None = Field(
        default=None, description="One line per problem (invalid specs)."
    )


class FinalMetrics(BaseModel):
    train_loss: float | None
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None


class Job(BaseModel):
    state: RunStatus
    queue: str
    attempt: int
    max_attempts: int
    cancel_requested: bool
    progress_epoch: int
    progress_total: int
    worker_id: str | None
    error: str | None
    enqueued_at: str | None
    claimed_at: str | None
    heartbeat_at: str | None
    finished_at: str | None


class Run(BaseModel):
    """A run as `netlens show --json` prints it, plus its owner's name and page."""

    id: int
    name: str
    status: RunStatus
    spec: dict[str, Any]
    dataset: str
    architecture: str
    optimizer: str
    epochs_total: int
    epochs_recorded: int
    last_epoch: int | None
    recorded_bytes: int
    final_metrics: FinalMetrics
    layers: list[dict[str, Any]]
    tags: list[str]
    notes: str
    error: str | None
    device: str | None
    data_sha256: str | None
    data_info: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    group_id: int | None
    owner_id: int | None
    thinned_at: str | None = Field(
        None, description="When the retention policy thinned the run (null: never; docs/admin.md)."
    )
    thinning: dict[str, Any] | None = Field(
        None,
        description="How it was thinned: the policy, epochs_kept, epochs_dropped, bytes_freed.",
    )
    owner: str | None = Field(description="The owner's user name (null: no owner).")
    url: str = Field(description="The run's page, relative to the server.")


class RunDetail(Run):
    job: Job | None = Field(
        description="The queue's record (null for runs trained in a `netlens train` process)."
    )


class RunPage(BaseModel):
    runs: list[Run]
    total: int = Field(description="Runs matching the filters, all pages together.")
    limit: int
    offset: int
    next: str | None = Field(
        default=None,
        description="The next page (this query with the next offset), relative to the "
        'server; absent on the last page. Also in the `Link: <...>; rel="next"` header.',
    )


class Metrics(BaseModel):
    run_id: int
    epochs: list[int] = Field(description="Every recorded epoch, ascending.")
    metrics: dict[str, list[float | None]] = Field(
        description="Metric name -> one value per recorded epoch (null: not finite or missing)."
    )


class Submitted(BaseModel):
    id: int
    url: str


class CancelResult(BaseModel):
    id: int
    state: Literal["cancelled", "cancelling"]


class RetryResult(BaseModel):
    id: int
    attempt: int
    state: Literal["queued"]


class Token(BaseModel):
    id: int
    name: str
    user: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scope: Literal["read", "write"] = Field(description="read: GET and HEAD only")
    expires_at: str | None


class TokenList(BaseModel):
    tokens: list[Token]


class TokenCreated(Token):
    token: str = Field(description="The secret: shown once, never stored (only its SHA-256).")


class OpenApiDocument(BaseModel):
    openapi: str


class Preset(BaseModel):
    name: str
    description: str
    spec: SpecAnswer


class PresetList(BaseModel):
    presets: list[Preset]


class SpecChecked(BaseModel):
    spec: SpecAnswer = Field(description="The spec as submitting would store it (defaults filled).")
    estimated_bytes: int = Field(
        description="About how many bytes the run would record (a file dataset: the catalog's "
        "guess of its sizes)."
    )
    limit_bytes: int = Field(description="The most a run may record.")
    recorded_epochs: int = Field(description="Epochs that would be recorded.")


class TensorInfo(BaseModel):
    name: str = Field(description="e.g. params/hidden_1/kernel")
    dtype: str = Field(description="numpy dtype name, e.g. float32")
    shape: list[int] = Field(description="One epoch's value's shape.")
    epochs: list[int] = Field(description="The epochs at which it was recorded, ascending.")


class TensorList(BaseModel):
    run_id: int
    tensors: list[TensorInfo]


class TensorValues(BaseModel):
    run_id: int
    name: str
    dtype: str
    shape: list[int] = Field(description="One epoch's value's shape.")
    epochs: list[int] = Field(description="The recorded epochs in [start, stop], ascending.")
    values: list[Any] = Field(
        description="One nested list of that shape per epoch (null: not finite)."
    )


class Analysis(BaseModel):
    kind: str
    epoch: int
    state: Literal["queued", "running", "done", "failed"]
    summary: dict[str, Any] | None
    error: str | None
    requested_at: str
    started_at: str | None
    finished_at: str | None
    progress: str | None = Field(
        default=None,
        description="While it runs: what its worker is doing now, e.g. 'computing t-SNE for "
        "layer 2 of 3…' (null otherwise).",
    )


class AnalysisList(BaseModel):
    run_id: int
    analyses: list[Analysis]


class GroupRun(BaseModel):
    id: int
    name: str
    status: RunStatus
    owner: str | None
    epochs_total: int
    epochs_recorded: int
    final_metrics: FinalMetrics
    url: str


class GroupSummary(BaseModel):
    """A sweep: its grid and its runs' ids and states."""

    id: int
    name: str
    kind: Literal["sweep"]
    axes: list[dict[str, Any]] = Field(description='[{"field": "...", "values": [...]}]')
    base_spec: SpecAnswer
    created_at: str
    size: int = Field(description="Its runs (deleted ones are gone).")
    finished: bool = Field(description="No run queued or running.")
    counts: dict[str, int] = Field(description="Runs per status (only statuses that occur).")
    owner: str | None = Field(description="Who submitted it (null: no account).")
    url: str = Field(description="Its page, relative to the server.")
    run_ids: list[int] = Field(description="Its runs' ids, in grid order.")


class Group(GroupSummary):
    """A sweep: its grid and its runs, in grid order."""

    runs: list[GroupRun]


class GroupPage(BaseModel):
    groups: list[GroupSummary] = Field(description="Newest first.")
    total: int = Field(description="Groups matching the filters, all pages together.")
    limit: int
    offset: int
    next: str | None = Field(
        default=None,
        description="The next page (this query with the next offset); absent on the last "
        'page. Also in the `Link: <...>; rel="next"` header.',
    )


class ComparedMetrics(BaseModel):
    runs: list[int] = Field(description="The runs, in the order asked for.")
    epochs: list[int] = Field(description="Every epoch any of the runs recorded, ascending.")
    metrics: dict[str, list[list[float | None]]] = Field(
        description="Metric name -> one list per run (in `runs` order) of its values at "
        "`epochs`: null where that run recorded no value at that epoch (or not a finite one)."
    )


class ComparedCka(BaseModel):
    """Linear CKA of every layer of run `a` (rows) with every layer of run `b` (columns)."""

    a: int
    b: int
    epoch: int = Field(description="The epoch, one both runs recorded signatures at.")
    inputs: int = Field(description="The probe inputs both runs share: CKA's sample.")
    rows: list[str] = Field(description="Run a's layers.")
    columns: list[str] = Field(description="Run b's layers.")
    matrix: list[list[float | None]] = Field(
        description="matrix[i][j]: CKA of rows[i] with columns[j], 0 to 1 (null: a layer "
        "without variance on these inputs, e.g. every unit dead)."
    )


class RunDistance(BaseModel):
    run_id: int
    epochs: list[int] = Field(description="The epochs of its weight history, ascending.")
    distance: list[float | None] = Field(description="‖θ − θ₀‖ at each epoch (all weights).")
    initial_norm: float | None = Field(description="‖θ₀‖ (to make `distance` relative).")


class ComparedDistance(BaseModel):
    runs: list[RunDistance]


class AdminJob(BaseModel):
    """A job of the queue as the admin page's jobs table shows it."""

    run_id: int
    name: str
    owner_id: int | None
    owner: str | None
    state: RunStatus
    queue: str
    attempt: int
    max_attempts: int
    worker_id: str | None
    cancel_requested: bool
    progress_epoch: int
    progress_total: int
    enqueued_at: str
    claimed_at: str | None
    heartbeat_at: str | None
    finished_at: str | None
    runtime_s: float | None = Field(description="The current attempt's: claim to finish (or now).")
    error: str | None = Field(description="Its first line (the whole: GET /admin/jobs/{run_id}).")
    has_traceback: bool
    url: str = Field(description="The run's page, relative to the server.")


class AdminJobPage(BaseModel):
    jobs: list[AdminJob]
    total: int = Field(description="Jobs matching the filters, all pages together.")
    limit: int
    offset: int
    next: str | None = Field(
        default=None,
        description="The next page (this query with the next offset); absent on the last "
        'page. Also in the `Link: <...>; rel="next"` header.',
    )


class AnalysisKey(BaseModel):
    kind: Literal["epoch", "timeline", "tsne", "umap"]
    epoch: int


class AnalysisRequested(BaseModel):
    run_id: int
    epoch: int = Field(description="The epoch analysed (the last recorded one by default).")
    queued: list[AnalysisKey] = Field(
        description="What this request queued (empty: stored already, or on its way)."
    )
    analyses: list[Analysis] = Field(
        description="The analyses this request asks for, with their states: the epoch's "
        "and, for the last recorded epoch, the timeline."
    )


class Upload(BaseModel):
    id: int
    kind: Literal["csv", "mnist"] = Field(description="csv, or mnist (a Keras .npz)")
    name: str = Field(description="The file's name as sent (shown only; never a path).")
    size: int = Field(description="Bytes.")
    sha256: str
    owner: str | None
    created_at: str
    used_at: str | None = Field(description="When a run first took it (null: none yet).")


assert set(Upload.model_fields["kind"].annotation.__args__) == set(UPLOAD_KINDS)
assert set(AnalysisKey.model_fields["kind"].annotation.__args__) == set(ANALYSIS_KINDS)


class UploadList(BaseModel):
    uploads: list[Upload] = Field(description="Newest first.")


class AdminJobDetail(AdminJob):
    error: str | None = Field(description="The whole error message.")
    traceback: str | None
    time_limit_s: int | None
    from_scratch: bool
    last_metrics: dict[str, float | None]
    run_status: RunStatus
    epochs_recorded: int
    recorded_bytes: int


class Requeued(BaseModel):
    id: int
    attempt: int = Field(description="The new attempt (the old one is fenced off).")
    state: Literal["queued"]


class QueueSummary(BaseModel):
    states: dict[str, int] = Field(description="Jobs per state (every state, 0 when none).")
    queued: dict[str, int] = Field(description="Queued jobs per queue, by the database.")
    broker: dict[str, int | None] | None = Field(
        description="Messages waiting per queue on the broker (null for a queue: the broker "
        "could not be reached; null: the first reading is still under way)."
    )


class Worker(BaseModel):
    name: str
    hostname: str
    pid: int
    queues: list[str]
    device: str
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    state: Literal["online", "offline", "stopped"] = Field(
        description="online: heard from within `online_window_s`; offline: silent longer "
        "(killed or hung); stopped: exited cleanly."
    )
    seconds_since_heartbeat: float
    current_run_id: int | None
    current_run_name: str | None
    current_attempt: int | None


class WorkerList(BaseModel):
    workers: list[Worker] = Field(description="Online ones first, then the most recent.")
    online_window_s: float = Field(description="A worker silent longer counts as offline.")


class Account(BaseModel):
    id: int
    name: str
    admin: bool
    disabled: bool
    created_at: str


class AccountList(BaseModel):
    users: list[Account]


class UserStorage(BaseModel):
    owner_id: int | None = Field(description="null: runs without an owner.")
    owner: str | None
    runs: int
    recorded_bytes: int
    uploads: int
    upload_bytes: int
    total_bytes: int


class RunStorage(BaseModel):
    run_id: int
    name: str
    owner_id: int | None
    owner: str | None
    status: RunStatus
    epochs_recorded: int
    recorded_bytes: int
    created_at: str
    url: str


class StorageReport(BaseModel):
    users: list[UserStorage] = Field(description="Per owner, largest total first.")
    largest_runs: list[RunStorage] = Field(description="Largest recorded bytes first.")


# ---- the route table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str
    where: str = "query"
    required: bool = False  # (path parameters always are)
    # an array in the query: False is one comma-separated value (runs=3,5), "form" style
    explode: bool | None = None


TEXT40 = {"type": "string", "maxLength": 40, "pattern": NO_NUL}
TEXT50 = {"type": "string", "maxLength": 50, "pattern": NO_NUL}  # a tag (spec.tags)
TEXT200 = {"type": "string", "maxLength": 200, "pattern": NO_NUL}
MAX_EPOCH = 2**31 - 1  # epochs in tensor ranges
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
RUN_ID = Param("run_id", ID_SCHEMA, "The run's id (1 to 2^31-1).", "path")
TOKEN_ID = Param("token_id", ID_SCHEMA, "The token's id (1 to 2^31-1).", "path")
UPLOAD_ID = Param("upload_id", ID_SCHEMA, "The upload's id (1 to 2^31-1).", "path")
LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "Items per page.",
)
OFFSET = Param(
    "offset", {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0}, "Items to skip."
)
BOUNDED_ID = ID_SCHEMA
BOUNDED_RUN_ID = RUN_ID
DATE_TIME = {"type": "string", "format": "date-time", "maxLength": 40}
LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "Items per page.",
)
OFFSET = Param(
    "offset", {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0}, "Items to skip."
)
ORDER = Param("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}, "Order.")
COMPARED_RUNS = Param(
    "runs",
    {
        "type": "array",
        "items": ID_SCHEMA,
        "minItems": 1,
        "maxItems": MAX_COMPARED,
        "uniqueItems": True,
    },
    f"The runs, comma-separated (runs=3,5): 1 to {MAX_COMPARED}, each once.",
    required=True,
    explode=False,
)
USER_NAME = Param(
    "name",
    {"type": "string", "pattern": NAME_PATTERN.pattern},
    "The user's name (2 to 40 characters: a-z, 0-9, '.', '_', '-').",
    "path",
)
MAX_IF_NONE_MATCH = 4096  # webapp/etags.py (400 beyond)
IF_NONE_MATCH = Param(
    "If-None-Match",
    {"type": "string", "maxLength": MAX_IF_NONE_MATCH},
    'ETags of answers you hold (`W/"..."`, comma-separated), or `*`: when one matches '
    "(weak comparison) the answer is 304 with no body. A value that is not a list of entity "
    f"tags is ignored; one over {MAX_IF_NONE_MATCH:,} characters is 400.",
    "header",
)
ETAG_HEADER = {
    "ETag": {
        "description": 'A weak tag (`W/"<run id>-<digest>"`) of this answer: it changes '
        "whenever the answer could (new epochs, a status change, a retry, an edit; for a "
        "tensor, also the range and JSON or .npy). Send it back in If-None-Match.",
        "schema": {"type": "string"},
    }
}
NOT_MODIFIED = {
    "description": "Not Modified: If-None-Match matched (or was `*`); no body. The answer you "
    "hold is current.",
    "headers": ETAG_HEADER,
}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template under PREFIX: /runs/{run_id}
    operation_id: str
    summary: str
    access: str  # "member", "owner" or "admin" (see webapp/authz.py)
    response: tuple[int, type[BaseModel] | None | str]  # (status, model | None | media type)
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    description: str = ""
    extra_responses: dict[str, Any] = field(default_factory=dict)
    body_required: bool = True  # (a body model's; False: it may be left out)
    body_content: dict[str, Any] | None = None  # a body that is not JSON: media type -> schema
    created: bool = False  # a 201 with `Location: <the new thing>`
    etag: bool = False  # answers carry an ETag; If-None-Match may answer 304 (webapp/etags.py)
    filename: str = "run<ID>.npz"  # a file answer's name (Content-Disposition)


ERROR_TEXT = {
    400: "Bad or unknown query parameter, or a body that is not a JSON object.",
    401: "No token, or a bad, revoked or disabled user's token.",
    403: "Not allowed: the run (or token) belongs to another user (only its owner or an "
    "admin may change it), an admin route asked by a member, or the token is read-only "
    "(GET and HEAD only).",
    404: "No such run, token, group or user (ids are 1 to 2^31-1: others are no route).",
    409: "The state does not allow it (e.g. deleting a running run, comparing runs that "
    "recorded no signatures, disabling your own account).",
    413: f"The body is over {MAX_BODY_BYTES // 1024} KiB.",
    415: "The body is not application/json.",
    422: "The body is well-formed JSON but invalid (fields named in `fields`).",
    429: "A per-user limit is reached (e.g. queued and running jobs): the message names it "
    "and its value (docs/team-server.md).",
    500: "An internal error; the server logged it.",
}
# Every route can answer these: the guard's 401, an unknown query parameter's 400, and 500.
COMMON_ERRORS = (400, 401, 500)
# and every state-changing one 403 (a read-only token) and, for its optional or required
# JSON body, 400 (malformed), 413 (too large), 415 (not JSON) and 422 (invalid)
WRITE_ERRORS = (403, 413, 415, 422)
OWNER_NOTE = 'Rule "owner": members may do this to their own runs only; admins to any run.'
ADMIN_NOTE = 'Rule "admin": admins only (members: 403).'

WHERE = Param(
    "where",
    {"type": "string", "maxLength": MAX_FILTER_LENGTH, "pattern": NO_NUL},
    "A filter expression (docs/filter.md), e.g. `dataset = digits and val_accuracy > 0.9 "
    "and tag:preset and optimizer.learning_rate < 0.01 and created > 2026-11-01`: fields, "
    "= != < <= > >= ~, and/or/not, parentheses. One that cannot be read is 400, the message "
    "naming the token and its column.",
)
RUN_FILTERS = (
    Param(
        "status",
        {"type": "string", "enum": list(RUN_STATUSES)},
        "Only runs with this status.",
    ),
    Param("group", ID_SCHEMA, "Only runs of this group (sweep)."),
    Param("owner", TEXT40, "Only runs of the user with this name."),
    Param("dataset", TEXT40, "Only runs of this dataset."),
    Param("tag", TEXT50, "Only runs carrying this tag."),
    Param("name", TEXT200, "Only runs whose name contains this (case-insensitive)."),
    WHERE,
    Param(
        "sort",
        {"type": "string", "enum": list(SORTABLE), "default": "id"},
        "The field to sort on (empty values last; ties newest first).",
    ),
    Param("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}, "Order."),
)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/runs",
        "listRuns",
        "List runs, newest first",
        "member",
        (200, RunPage),
        (400, 404),
        (
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                "Runs per page.",
            ),
            Param(
                "offset",
                {"type": "integer", "minimum": 0, "maximum": MAX_ID, "default": 0},
                "Runs to skip.",
            ),
            *RUN_FILTERS,
        ),
        description='More pages: `next` in the body and a `Link: <...>; rel="next"` header '
        "give this query with the next offset (both absent on the last page).",
    ),
    Route(
        "GET",
        "/runs.csv",
        "listRunsCsv",
        "The runs the filters match, as a CSV file",
        "member",
        (200, "text/csv"),
        (400, 404),
        RUN_FILTERS,
        description=f"The filters and order of listRuns, without paging: the first "
        f"{MAX_CSV_ROWS:,} runs that match (the file is then named "
        "runs-first-N-of-TOTAL.csv; `X-Total-Count` says how many match). Text cells that "
        "a spreadsheet would read as a formula (= + - @) start with a quote.",
        filename="runs.csv",
    ),
    Route(
        "POST",
        "/runs",
        "submitRun",
        "Submit a spec (or a preset) to the job queue",
        "member",
        (201, Submitted),
        (400, 413, 415, 422, 429),
        body=SubmitRequest,
        description="The spec is validated with the rules of `netlens validate`; the run "
        "is owned by the token's user. A `dataset.path` is always refused (a "
        "path on the server is accepted only from its command line): upload "
        "the file and use `dataset.upload`.",
    ),
    Route(
        "GET",
        "/runs/{run_id}",
        "getRun",
        "One run, with its job",
        "member",
        (200, RunDetail),
        (404,),
        (RUN_ID,),
        etag=True,
    ),
    Route(
        "DELETE",
        "/runs/{run_id}",
        "deleteRun",
        "Delete a finished run and its records",
        "owner",
        (204, None),
        (403, 404, 409),
        (RUN_ID,),
        description=OWNER_NOTE,
    ),
    Route(
        "GET",
        "/runs/{run_id}/metrics",
        "getRunMetrics",
        "Every recorded epoch's metrics",
        "member",
        (200, Metrics),
        (404,),
        (RUN_ID,),
        etag=True,
    ),
    Route(
        "GET",
        "/runs/{run_id}/metrics.csv",
        "getRunMetricsCsv",
        "Every recorded epoch's metrics, as a CSV file",
        "member",
        (200, "text/csv"),
        (404,),
        (RUN_ID,),
        description="One row per recorded epoch: `epoch`, then one column per metric "
        "(empty where that epoch has none).",
        filename="run<ID>-metrics.csv",
    ),
    Route(
        "GET",
        "/runs/{run_id}/export",
        "exportRun",
        "Everything recorded, as one .npz file (docs/export-format.md)",
        "member",
        (200, "application/octet-stream"),
        (400, 404, 409),
        (
            RUN_ID,
            Param(
                "compress",
                {"type": "boolean", "default": False},
                "A compressed .npz (smaller, slower).",
            ),
        ),
        etag=True,
    ),
    Route(
        "POST",
        "/runs/{run_id}/cancel",
        "cancelRun",
        "Cancel a queued run, or stop a running one after its current epoch",
        "owner",
        (200, CancelResult),
        (403, 404, 409, 413, 415),
        (RUN_ID,),
        description=OWNER_NOTE,
    ),
    Route(
        "POST",
        "/runs/{run_id}/retry",
        "retryRun",
        "A new attempt of a failed or cancelled run",
        "owner",
        (200, RetryResult),
        (400, 403, 404, 409, 413, 415, 422, 429),
        (RUN_ID,),
        body=RetryRequest,
        body_required=False,
        description=OWNER_NOTE + " The body is optional.",
    ),
    Route(
        "GET",
        "/tokens",
        "listTokens",
        "The caller's API tokens (never their secrets)",
        "member",
        (200, TokenList),
        (400, 403, 404),
        (Param("user", TEXT40, "Admins only: another user's tokens."),),
    ),
    Route(
        "POST",
        "/tokens",
        "createToken",
        "Refused: a token cannot create tokens",
        "member",
        (201, TokenCreated),
        (400, 403, 409, 413, 415, 422),
        body=TokenRequest,
        description="Always 403 with a token (a stolen token must not outlive its "
        "revocation in new ones): create tokens on the account page or with "
        "`netlens tokens create USER [--scope read] [--expires 30d]`.",
    ),
    Route(
        "DELETE",
        "/tokens/{token_id}",
        "revokeToken",
        "Revoke a token",
        "member",
        (204, None),
        (403, 404),
        (TOKEN_ID,),
        description="Its owner or an admin may revoke it; it stops working at once.",
    ),
    Route(
        "GET",
        "/presets",
        "listPresets",
        "The named presets, with their specs",
        "member",
        (200, PresetList),
    ),
    Route(
        "POST",
        "/specs/validate",
        "validateSpec",
        "Check a spec as submitting would, creating nothing",
        "member",
        (200, SpecChecked),
        (400, 413, 415, 422),
        body=ExperimentSpec,
        description="The body is the spec itself. 422 answers are those of `POST /api/runs` "
        "(`error`, `fields`, `errors`); per-user quotas are not checked here.",
    ),
    Route(
        "GET",
        "/runs/{run_id}/tensors",
        "listRunTensors",
        "The tensors a run recorded: shape, dtype and epochs",
        "member",
        (200, TensorList),
        (404,),
        (BOUNDED_RUN_ID,),
        etag=True,
    ),
    Route(
        "GET",
        "/runs/{run_id}/tensors/{name}",
        "getRunTensor",
        "One tensor's values over a range of epochs (JSON or .npy)",
        "member",
        (200, TensorValues),
        (400, 404),
        (
            BOUNDED_RUN_ID,
            Param(
                "name",
                TEXT200,
                "The tensor's name; its slashes stay as they are (params/hidden_1/kernel).",
                "path",
            ),
            Param(
                "start",
                {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH, "default": 0},
                "First epoch.",
            ),
            Param(
                "stop",
                {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH},
                "Last epoch, included (default: the last recorded).",
            ),
            Param(
                "format",
                {"type": "string", "enum": ["json", "npy"]},
                "Overrides the Accept header.",
            ),
        ),
        description="JSON (the default, or `Accept: application/json`) for at most "
        f"{MAX_JSON_VALUES:,} values (413 above: ask for .npy). `Accept: "
        "application/octet-stream` (or `?format=npy`) answers a numpy .npy file of any size "
        "(never pickled): one structured array, a row per epoch, with fields `epoch` (int64) "
        "and `value` (the tensor); `X-NetLens-Epochs` is the row count.",
        extra_responses={
            "413": {
                "description": f"Asked for JSON, and over {MAX_JSON_VALUES:,} values.",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
            },
        },
        etag=True,
    ),
    Route(
        "GET",
        "/runs/{run_id}/analyses",
        "listRunAnalyses",
        "A run's stored signature analyses",
        "member",
        (200, AnalysisList),
        (400, 404),
        (
            BOUNDED_RUN_ID,
            Param(
                "kind",
                {"type": "string", "enum": list(ANALYSIS_KINDS)},
                "Only analyses of this kind.",
            ),
        ),
        etag=True,
    ),
    Route(
        "GET",
        "/groups/{group_id}",
        "getGroup",
        "A sweep: its grid, its runs and their states",
        "member",
        (200, Group),
        (404,),
        (Param("group_id", BOUNDED_ID, "The group's id.", "path"),),
    ),
    # ---- comparing runs (webapp/api_compare.py) ----
    Route(
        "GET",
        "/compare/metrics",
        "compareMetrics",
        "Several runs' metrics aligned on the union of their epochs",
        "member",
        (200, ComparedMetrics),
        (400, 404, 413),
        (
            COMPARED_RUNS,
            Param(
                "metric",
                {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "pattern": "^[^,\\x00]*$",
                    },
                    "minItems": 1,
                    "maxItems": MAX_METRICS,
                    "uniqueItems": True,
                },
                f"Metric names, comma-separated (1 to {MAX_METRICS}; e.g. "
                "train_loss,val_loss, as GET /runs/{run_id}/metrics names them). Default: "
                "train_loss, val_loss, train_accuracy, val_accuracy (those any run recorded).",
                explode=False,
            ),
        ),
        description="What the compare page overlays. Each metric has one list per run, "
        "aligned on `epochs` with null where that run has no value. A metric none of the "
        f"runs recorded is 404. At most {MAX_JSON_VALUES:,} values in all (413: ask for fewer "
        "runs or metrics).",
        extra_responses={
            "413": {
                "description": f"Over {MAX_JSON_VALUES:,} values.",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
            },
        },
    ),
    Route(
        "GET",
        "/compare/cka",
        "compareCka",
        "Linear CKA between two runs' layers at an epoch",
        "member",
        (200, ComparedCka),
        (400, 404, 409),
        (
            Param("a", ID_SCHEMA, "The run of the rows.", required=True),
            Param("b", ID_SCHEMA, "The run of the columns (may be a again).", required=True),
            Param(
                "epoch",
                {"type": "integer", "minimum": 0, "maximum": MAX_EPOCH},
                "An epoch both runs recorded signatures at (default: the last such).",
            ),
        ),
        description="As the compare page's CKA tab: on the probe inputs both runs share "
        "(the same dataset spec). 404: no such run, or `epoch` is not one both recorded "
        "signatures at (the message names the range). 409: a run recorded no signatures "
        "yet (or none at a shared epoch), or the runs share fewer than 3 probe inputs.",
    ),
    Route(
        "GET",
        "/compare/distance",
        "compareDistance",
        "Each run's distance of the weights from their initial values",
        "member",
        (200, ComparedDistance),
        (400, 404),
        (COMPARED_RUNS,),
        description="As the compare page's tab: ‖θ − θ₀‖ over every kernel and bias, per "
        "epoch of the weight history (its low-resolution copy for long runs).",
    ),
    # ---- the admin page's data and actions (webapp/api_admin.py) ----
    Route(
        "GET",
        "/admin/jobs",
        "listAdminJobs",
        "The job queue: jobs filtered, sorted and paged",
        "admin",
        (200, AdminJobPage),
        (400, 403, 404),
        (
            Param(
                "state",
                {
                    "type": "array",
                    "items": {"type": "string", "enum": list(JOB_STATES)},
                    "minItems": 1,
                    "maxItems": len(JOB_STATES),
                    "uniqueItems": True,
                },
                "Only jobs in these states, comma-separated (state=failed,cancelled).",
                explode=False,
            ),
            Param("owner", TEXT40, "Only the jobs of this user's runs (404: no such user)."),
            Param(
                "queue", {"type": "string", "enum": list(admin_store.QUEUES)}, "Only this queue."
            ),
            Param(
                "since", DATE_TIME, "Enqueued at or after (RFC 3339, e.g. 2026-01-31T08:00:00Z)."
            ),
            Param("until", DATE_TIME, "Enqueued before (RFC 3339); before `since`: no job."),
            Param(
                "sort",
                {"type": "string", "enum": list(admin_store.SORTABLE), "default": "enqueued_at"},
                "The field to sort on (ties: newest run first).",
            ),
            ORDER,
            LIMIT,
            OFFSET,
        ),
        description=ADMIN_NOTE + " The admin page's jobs table. More pages: `next` in the "
        'body and a `Link: <...>; rel="next"` header (absent on the last page).',
    ),
    Route(
        "GET",
        "/admin/jobs/{run_id}",
        "getAdminJob",
        "One job, with its whole error and traceback",
        "admin",
        (200, AdminJobDetail),
        (403, 404),
        (RUN_ID,),
        description=ADMIN_NOTE + " 404: no such run, or the run has no job (trained by "
        "`netlens train` in a process of its own).",
    ),
    Route(
        "POST",
        "/admin/jobs/{run_id}/requeue",
        "requeueJob",
        "Put a queued or running job back on its queue as a new attempt",
        "admin",
        (200, Requeued),
        (403, 404, 409, 413, 415),
        (RUN_ID,),
        description=ADMIN_NOTE + " The admin page's Requeue: for a job stuck on a hung "
        "worker or whose message was lost; the old attempt is fenced off, and a requeue uses "
        "up no attempt. 409: the job is finished (retry it: POST /runs/{run_id}/retry), or the "
        "run has no job. Cancel, retry and delete any run: /runs/{run_id}/...",
    ),
    Route(
        "GET",
        "/admin/queues",
        "getQueueSummary",
        "Jobs per state, queued jobs per queue, the broker's queue lengths",
        "admin",
        (200, QueueSummary),
        (403,),
        description=ADMIN_NOTE + " The admin page's cards. The broker's lengths are read in "
        "the background at most every 2 s, never waited on for long.",
    ),
    Route(
        "GET",
        "/admin/workers",
        "listWorkers",
        "Worker processes, by their heartbeats, with their current jobs",
        "admin",
        (200, WorkerList),
        (400, 403),
        (
            Param(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_WORKERS,
                    "default": MAX_WORKERS_LISTED,
                },
                "Workers listed (the most recently heard from).",
            ),
        ),
        description=ADMIN_NOTE,
    ),
    Route(
        "GET",
        "/admin/users",
        "listUsers",
        "The accounts: name, admin, disabled (never a password hash)",
        "admin",
        (200, AccountList),
        (403,),
        description=ADMIN_NOTE,
    ),
    Route(
        "PATCH",
        "/admin/users/{name}",
        "changeUser",
        "Disable or enable an account",
        "admin",
        (200, Account),
        (400, 403, 404, 409, 413, 415, 422),
        (USER_NAME,),
        body=UserChange,
        description=ADMIN_NOTE + " As the admin page's Disable/Enable and `netlens users "
        "disable|enable`: disabling ends the user's sessions and revokes their tokens. Your "
        "own account cannot be changed (409), so an admin never locks themselves out.",
    ),
    Route(
        "GET",
        "/admin/storage",
        "getStorage",
        "Storage per user and the largest runs",
        "admin",
        (200, StorageReport),
        (400, 403),
        (
            Param(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": admin_store.MAX_LARGEST,
                    "default": 20,
                },
                "Largest runs listed.",
            ),
        ),
        description=ADMIN_NOTE + " Recorded bytes per run owner and their uploads, largest "
        "first; the runs that take the most room (delete one: DELETE /runs/{run_id}).",
    ),
    Route(
        "GET",
        "/groups",
        "listGroups",
        "Sweeps (run groups), newest first",
        "member",
        (200, GroupPage),
        (400,),
        (
            LIMIT,
            OFFSET,
            Param("owner", TEXT40, "Only the groups of the user with this name."),
        ),
        description='More pages: `next` and a `Link: <...>; rel="next"` header, as for runs.',
    ),
    Route(
        "POST",
        "/groups",
        "createGroup",
        "Submit a sweep: one run per point of a grid over a base spec",
        "member",
        (201, Group),
        (400, 413, 415, 422, 429),
        body=SweepRequest,
        created=True,
        description="The checks of the new-experiment page's sweep and `netlens sweep`: "
        f"1 to {MAX_SWEEP_AXES} axes over sweepable spec fields, every value checked "
        f"against the spec's limits, at most {MAX_SWEEP_RUNS} runs (all or nothing: 422 "
        "names each field, value and limit at fault). Members: at most their `sweep_runs` "
        "per sweep (400) and their queued and running jobs (429). The group and its runs "
        "are the caller's; `dataset.upload` names one of the caller's uploads (it cannot "
        "be swept, nor can `dataset.path`, which is always refused).",
    ),
    Route(
        "POST",
        "/runs/{run_id}/analyses",
        "requestRunAnalyses",
        "Request the signature analyses of a recorded epoch",
        "member",
        (202, AnalysisRequested),
        (400, 404, 409, 413, 415, 422),
        (BOUNDED_RUN_ID,),
        body=AnalysisRequest,
        body_required=False,
        description="As the signatures page's Analyze: any member may ask (the results are "
        "derived views of a run, which every member reads). Queues the epoch's analysis "
        "(default: the last recorded epoch) and, for the last epoch, the timeline. 202 "
        "while any of them is queued or running; 200 when all are stored (then nothing is "
        "queued). 409: the run recorded no signatures (yet); 422: the epoch was not "
        "recorded (the message gives the recorded range). Results: GET on this path.",
        extra_responses={
            "200": {
                "description": "Stored already: nothing queued.",
                "content": {
                    "application/json": {"schema": {"$ref": REF.format(model="AnalysisRequested")}}
                },
            }
        },
    ),
    Route(
        "GET",
        "/uploads",
        "listUploads",
        "The caller's uploaded data files",
        "member",
        (200, UploadList),
        (400, 403, 404),
        (Param("user", TEXT40, "Admins only: another user's uploads."),),
        description="Uploads are their owner's: other members never see or use them.",
    ),
    Route(
        "POST",
        "/uploads",
        "createUpload",
        "Upload a data file (CSV, or MNIST as a Keras .npz) for `dataset.upload`",
        "member",
        (201, Upload),
        (400, 413, 415, 422, 429),
        (
            Param(
                "kind",
                {"type": "string", "enum": list(UPLOAD_KINDS)},
                "csv or mnist (default: from the name: .npz is mnist, else csv).",
            ),
            Param(
                "name",
                {"type": "string", "maxLength": UPLOAD_NAME_MAX, "pattern": NO_NUL},
                "The file's name, shown only (.csv or .npz, as the kind); default: the "
                "multipart part's file name, else upload.csv (upload.npz for mnist).",
            ),
        ),
        body_content={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "contentMediaType": "application/octet-stream",
                        }
                    },
                    "required": ["file"],
                    "additionalProperties": False,
                },
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
            },
            "text/csv": {"schema": {"type": "string"}, "example": "x1,x2,label\n0,1,1\n1,1,0\n"},
        },
        created=True,
        description="`curl -F file=@iris.csv` (multipart, one part named `file`), or the raw "
        "file as the body (`application/octet-stream` or `text/csv`; `?name=` its name). The "
        "server streams it to disk with the upload limit (NETLENS_MAX_UPLOAD_MB) checked "
        "while reading (413 over it), checks it is what its kind says (422 otherwise) and "
        "counts it against the caller's `uploads` and `upload_bytes` limits (429).",
        extra_responses={
            "413": {
                "description": "The file is over the upload limit (the message names it).",
                "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
            },
        },
    ),
    Route(
        "GET",
        "/uploads/{upload_id}",
        "getUpload",
        "One of the caller's uploads",
        "member",
        (200, Upload),
        (404,),
        (UPLOAD_ID,),
        description="Another member's upload is 404, as a missing one (admins see all).",
    ),
    Route(
        "DELETE",
        "/uploads/{upload_id}",
        "deleteUpload",
        "Delete an upload no run uses",
        "member",
        (204, None),
        (404, 409),
        (UPLOAD_ID,),
        description="Its owner or an admin (another member's upload is 404, as a missing "
        "one). 409 while a run's spec names it (a retry reads the file again): delete "
        "those runs first.",
    ),
    Route(
        "GET",
        "/openapi.json",
        "getOpenApi",
        "This description",
        "member",
        (200, OpenApiDocument),
    ),
)

# the Python API's streaming routes (webapp/api_ingest.py), described in a module of their own
from netlens.webapp import openapi_ingest  # noqa: E402

ROUTES += openapi_ingest.ROUTES


@cache
def _schemas() -> dict[str, Any]:
    """Every schema (computed once; treat as read-only)."""
    models = [
        ExperimentSpec,
        SubmitRequest,
        RetryRequest,
        TokenRequest,
        ApiError,
        RunPage,
        RunDetail,
        Metrics,
        Submitted,
        CancelResult,
        RetryResult,
        TokenList,
        TokenCreated,
        OpenApiDocument,
        PresetList,
        SpecChecked,
        TensorList,
        TensorValues,
        AnalysisList,
        Group,
        SweepRequest,
        AnalysisRequest,
        GroupPage,
        AnalysisRequested,
        Upload,
        UploadList,
        ComparedMetrics,
        ComparedCka,
        ComparedDistance,
        AdminJobPage,
        AdminJobDetail,
        Requeued,
        QueueSummary,
        WorkerList,
        AccountList,
        Account,
        UserChange,
        StorageReport,
        *openapi_ingest.MODELS,
    ]
    requests = (
        ExperimentSpec,
        SubmitRequest,
        RetryRequest,
        TokenRequest,
        SweepRequest,
        AnalysisRequest,
        UserChange,
        *openapi_ingest.REQUESTS,
    )
    pairs = [
        (
            m,
            "validation" if m in requests else "serialization",
        )
        for m in models
    ]
    _, top = models_json_schema(pairs, ref_template=REF)
    return top["$defs"]


def error_statuses(route: Route) -> list[int]:
    """Every error status the route can answer (documented with the ApiError body)."""
    codes = {*COMMON_ERRORS, *route.errors}
    if route.access == "admin":  # a member's token
        codes.add(403)
    if route.method != "GET":
        codes.update(WRITE_ERRORS)
    if any(p.where == "path" for p in route.params):
        codes.add(404)
    return sorted(codes)


def _tag(path: str) -> str:
    for tag in ("tokens", "groups", "uploads"):
        if path.startswith(f"/{tag}"):
            return tag
    return "meta" if "openapi" in path else "runs"

    first = path.split("/")[1]
    if first in ("tokens", "admin", "compare"):
        return first
    return "meta" if "openapi" in path else "runs"


def _parameter(p: Param) -> dict[str, Any]:
    out = {
        "name": p.name,
        "in": p.where,
        "required": p.where == "path" or p.required,
        "description": p.description,
        "schema": p.schema,
    }
    if p.explode is not None:
        out["style"], out["explode"] = "form", p.explode
    return out


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [_tag(route.path)],
        "x-netlens-rule": route.access,
    }
    if route.description:
        op["description"] = route.description
    params = route.params + ((IF_NONE_MATCH,) if route.etag else ())
    if params:
        op["parameters"] = [_parameter(p) for p in params]
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {
                "application/json": {"schema": {"$ref": REF.format(model=route.body.__name__)}}
            },
        }
    elif route.body_content is not None:
        op["requestBody"] = {"required": True, "content": route.body_content}
    status, payload = route.response
    ok: dict[str, Any] = {"description": "OK" if status < 300 else "Done"}
    if isinstance(payload, str):
        ok["description"] = "The file, streamed."
        ok["content"] = {payload: {"schema": {"type": "string", "contentMediaType": payload}}}
        ok["headers"] = {
            "Content-Disposition": {
                "description": f"attachment; filename={route.filename}",
                "schema": {"type": "string"},
            }
        }
    elif payload is not None:
        ok["content"] = {
            "application/json": {"schema": {"$ref": REF.format(model=payload.__name__)}}
        }
    if route.created:
        ok["headers"] = {
            "Location": {"description": "The new thing's URL.", "schema": {"type": "string"}}
        }
    responses: dict[str, Any] = {str(status): ok}
    if route.etag:
        ok["headers"] = {**ok.get("headers", {}), **ETAG_HEADER}
        responses["304"] = NOT_MODIFIED
    for code in error_statuses(route):
        responses[str(code)] = {
            "description": ERROR_TEXT[code],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
        }
    responses.update(route.extra_responses)
    op["responses"] = responses
    return op


def document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every /api route."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "NetLens REST API",
            "version": API_VERSION,
            "description": "Runs, sweeps, signature analyses, uploads, the job queue, "
            "exports, comparisons of runs and (for admins) the admin page's data and actions "
            "of a NetLens server, version "
            f"{API_VERSION} under `{PREFIX}` (`/api` is an alias: the same routes and "
            "rules). Every route needs `Authorization: Bearer <token>` (`netlens tokens "
            "create USER` on the server, or the account page). Members "
            "read every run and change only their own; admins any. "
            "Request bodies are JSON, at most "
            f"{MAX_BODY_BYTES // 1024} KiB. Ids are 1 to 2^31-1. Errors are an `ApiError` "
            "object; a method a path does not take is 405 with `Allow`, a path no route "
            "serves 404. See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (nl_...).",
                }
            },
        },
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
