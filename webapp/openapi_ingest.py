"""The OpenAPI entries (bodies, answers, routes) of webapp/api_ingest.py: runs trained in a
client's process and streamed by the Python API. webapp/openapi.py adds them to its ROUTES."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from netlens.storage.client_runs import FINAL_STATUSES
from netlens.storage.spec import LIMITS
from netlens.webapp.openapi import NO_NUL, OWNER_NOTE, REF, RUN_ID, Route, Submitted
from netlens.webapp.run_meta import MAX_LAYERS, DataInfo, LayerEntry

TEXT_200 = {"max_length": 200, "pattern": NO_NUL}
NPZ = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}


class ClientRunMeta(BaseModel):
    """The `meta` part of POST /client-runs: what the run is and how it started."""

    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any] = Field(
        description="An experiment spec of model kind sequential with dataset arrays "
        "(nl.Sequential.fit) or model kind flax with dataset external (nl.Recorder)."
    )
    layers: list[LayerEntry] = Field(
        max_length=MAX_LAYERS,
        description="The recorded layers (fit) or modules (nl.Recorder) in computation order; "
        "names unique. For fit they must be the spec's model.layers as recorded.",
    )
    device: StrictStr = Field("", **TEXT_200)
    data_info: DataInfo = Field(
        description="What the run was trained or recorded on. fit sends the keys the server "
        "derives from the data sent (they must agree); nl.Recorder sends input_shape, "
        "probe_labels, recorder and config too. n_probe is probe/x's row count."
    )
    architecture: StrictStr = Field("", **TEXT_200)


class FinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal[FINAL_STATUSES]  # type: ignore[valid-type]
    error: StrictStr | None = Field(None, max_length=20_000, pattern=NO_NUL)
    epochs_total: int | None = Field(
        None, ge=1, le=LIMITS["max_epochs"], description="The run's length, when known at its end."
    )


class ReopenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: StrictStr = Field(**TEXT_200)
    layers: list[LayerEntry] | None = Field(None, max_length=MAX_LAYERS)
    data_info: DataInfo | None = None
    architecture: StrictStr | None = Field(None, **TEXT_200)


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any] = Field(
        description="The run's spec with a larger training.epochs (nothing else changed)."
    )


class ChunkWritten(BaseModel):
    run_id: int
    epochs: int = Field(description="Epochs in the chunk.")
    written: int = Field(description="Epochs new to the run (0: a chunk sent again).")
    last_epoch: int


class ClientRunState(BaseModel):
    id: int
    status: str
    changed: bool = Field(description="False: the run had ended so already (a repeated finish).")


MODELS = (ClientRunMeta, FinishRequest, ReopenRequest, ExtendRequest, ChunkWritten, ClientRunState)
REQUESTS = (ClientRunMeta, FinishRequest, ReopenRequest, ExtendRequest)
CLIENT_NOTE = (
    " Only runs streamed from the Python API (no job); others are 409. Docs: docs/api.md, "
    '"Streaming runs from the Python API".'
)
TOO_LARGE = {
    "413": {
        "description": "The body is over its limit (the message names it: NETLENS_MAX_CHUNK_MB).",
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
    }
}

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/client-runs",
        "createClientRun",
        "Create a run that the Python API trains on the client and streams here",
        "member",
        (201, Submitted),
        (400, 413, 415, 422, 429),
        body_content={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "meta": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "description": "A ClientRunMeta object as JSON.",
                        },
                        "arrays": NPZ,
                    },
                    "required": ["meta", "arrays"],
                    "additionalProperties": False,
                }
            }
        },
        created=True,
        description="Owned by the token's user and running at once, counted against the "
        "user's `active_jobs` limit (429). `meta`: the spec (checked as for POST /runs; only "
        "the kinds the Python API makes), layers, device, data_info, architecture. `arrays`: "
        "the run's fixed arrays as an .npz (probe/x, ..., and for fit the data/... a worker "
        "could retrain it from, checked as a worker would). 422 also when layers and "
        "data_info disagree with each other, the spec or the arrays (the message names the "
        "field: layer names repeated, a recorded layer without its signature, n_probe not "
        "probe/x's rows, fit's layers or data_info not those its spec and data give).",
        extra_responses=TOO_LARGE,
    ),
    Route(
        "POST",
        "/runs/{run_id}/epochs",
        "appendEpochs",
        "Store a chunk of epochs (.npz); idempotent by epoch",
        "owner",
        (200, ChunkWritten),
        (404, 409, 413, 415, 422),
        (RUN_ID,),
        body_content={"application/octet-stream": {"schema": NPZ}},
        description=OWNER_NOTE + " The chunk's format is storage/wire.py's (epochs, metrics, "
        "meta, tensors/<name>, sparse/<name>, checkpoint). Epochs the run holds already are "
        "skipped: a chunk sent again answers 200 with `written` 0. 409 unless the run is "
        "running; 422 for a tensor whose dtype or shape differs from what the run holds, or a "
        "malformed body." + CLIENT_NOTE,
        extra_responses=TOO_LARGE,
    ),
    Route(
        "POST",
        "/runs/{run_id}/finish",
        "finishClientRun",
        "End a streamed run with its status",
        "owner",
        (200, ClientRunState),
        (404, 409),
        (RUN_ID,),
        body=FinishRequest,
        description=OWNER_NOTE
        + " The same finish again answers 200 with `changed` false."
        + CLIENT_NOTE,
    ),
    Route(
        "POST",
        "/runs/{run_id}/reopen",
        "reopenClientRun",
        "Running again: a resumed nl.Recorder or a continued fit",
        "owner",
        (200, ClientRunState),
        (404, 409),
        (RUN_ID,),
        body=ReopenRequest,
        description=OWNER_NOTE + " New layers or data_info are checked as on create, against "
        "the run's spec and arrays (422); a continued fit's data_info is the stored one."
        + CLIENT_NOTE,
    ),
    Route(
        "POST",
        "/runs/{run_id}/extend",
        "extendClientRun",
        "A continued fit: the same spec with more training.epochs",
        "owner",
        (200, ClientRunState),
        (404, 409),
        (RUN_ID,),
        body=ExtendRequest,
        description=OWNER_NOTE + CLIENT_NOTE,
    ),
    Route(
        "GET",
        "/runs/{run_id}/arrays",
        "getRunArrays",
        "The run's fixed arrays (probe, grid; not its training data) as an .npz",
        "member",
        (200, "application/octet-stream"),
        (404,),
        (RUN_ID,),
    ),
    Route(
        "GET",
        "/runs/{run_id}/checkpoint",
        "getRunCheckpoint",
        "The newest checkpoint of an nl.Recorder run (what resume= restores)",
        "owner",
        (200, "application/octet-stream"),
        (403, 404),
        (RUN_ID,),
        description=OWNER_NOTE + " Its epoch is in the `NetLens-Checkpoint-Epoch` header; "
        "404 when the run saved none.",
    ),
)
