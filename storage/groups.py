"""Run groups (sweeps): a group and all its queued runs in one transaction; GroupInfo reads."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from netlens.storage.db import Database
from netlens.storage.jobs import Delivery, submit_many
from netlens.storage.models import Run, RunGroup
from netlens.storage.settings import Settings
from netlens.storage.spec import ExperimentSpec

GROUP_KINDS = ("sweep",)


class GroupNotFound(LookupError):
    def __init__(self, group_id: int):
        super().__init__(f"group {group_id} does not exist")
        self.group_id = group_id


@dataclass(frozen=True)
class GroupInfo:
    id: int
    name: str
    kind: str
    axes: list[dict[str, Any]]  # [{"field": "optimizer.learning_rate", "values": [...]}]
    base_spec: dict[str, Any]
    created_at: datetime
    run_ids: list[int]  # in submission order (grid order); deleted runs are gone
    counts: dict[str, int]  # runs per status, only statuses that occur
    owner_id: int | None = None  # who submitted it (None: the CLI on the server, single-user)

    @property
    def size(self) -> int:
        return len(self.run_ids)

    @property
    def is_finished(self) -> bool:
        return not any(self.counts.get(s) for s in ("queued", "running"))

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["created_at"] = self.created_at.isoformat()
        return out


def create_group(
    db: Database,
    name: str,
    base_spec: ExperimentSpec,
    axes: list[tuple[str, list[Any]]] | list[dict[str, Any]],
    specs: list[ExperimentSpec],
    *,
    kind: str = "sweep",
    max_attempts: int = 3,
    time_limit_s: int | None = None,
    owner_id: int | None = None,
    limits: Settings | None = None,
) -> tuple[int, list[Delivery]]:
    """Record a group, its runs and their queued jobs, all or nothing; returns the group id
    and the deliveries for the caller to send (netlens.dispatch.submission.submit_sweep does). With
    `limits`, LimitExceeded when the owner's queued and running jobs would exceed theirs."""
    if not specs:
        raise ValueError("specs: a group needs at least 1 run")
    if kind not in GROUP_KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(GROUP_KINDS)}")
    stored_axes = [
        a if isinstance(a, dict) else {"field": a[0], "values": list(a[1])} for a in axes
    ]
    with db.session() as s:
        group = RunGroup(
            name=name[:200],
            kind=kind,
            axes=stored_axes,
            base_spec=base_spec.model_dump(mode="json"),
            owner_id=owner_id,
        )
        s.add(group)
        s.flush()
        deliveries = submit_many(s, specs, group.id, max_attempts, time_limit_s, owner_id, limits)
        return group.id, deliveries


def get_group(db: Database, group_id: int) -> GroupInfo:
    with db.session() as s:
        group = s.get(RunGroup, group_id)
        if group is None:
            raise GroupNotFound(group_id)
        return _infos(s, [group])[0]


def list_groups(
    db: Database, limit: int = 50, offset: int = 0, owner_id: int | None = None
) -> list[GroupInfo]:
    """The most recent groups first; only `owner_id`'s when given."""
    query = select(RunGroup).order_by(RunGroup.id.desc()).limit(limit).offset(offset)
    if owner_id is not None:
        query = query.where(RunGroup.owner_id == owner_id)
    with db.session() as s:
        return _infos(s, list(s.scalars(query).all()))


def count_groups(db: Database, owner_id: int | None = None) -> int:
    """How many groups there are (`owner_id`'s only, when given)."""
    query = select(func.count()).select_from(RunGroup)
    if owner_id is not None:
        query = query.where(RunGroup.owner_id == owner_id)
    with db.session() as s:
        return int(s.scalar(query) or 0)


def _infos(s, groups: list[RunGroup]) -> list[GroupInfo]:
    """Two queries for any number of groups: run ids, and runs per status."""
    ids = [g.id for g in groups]
    run_ids: dict[int, list[int]] = defaultdict(list)
    for run_id, group_id in s.execute(
        select(Run.id, Run.group_id).where(Run.group_id.in_(ids)).order_by(Run.id)
    ):
        run_ids[group_id].append(run_id)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for group_id, status, n in s.execute(
        select(Run.group_id, Run.status, func.count())
        .where(Run.group_id.in_(ids))
        .group_by(Run.group_id, Run.status)
    ):
        counts[group_id][status] = n
    return [
        GroupInfo(
            id=g.id,
            name=g.name,
            kind=g.kind,
            axes=g.axes,
            base_spec=g.base_spec,
            created_at=g.created_at,
            run_ids=run_ids[g.id],
            counts=counts[g.id],
            owner_id=g.owner_id,
        )
        for g in groups
    ]
