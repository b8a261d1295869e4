"""runs: an index on each final metric column and the id (newest first among ties, the
order of the run lists), so that the runs table sorted by a metric
(the Runs grid, GET /api/v1/runs?sort=) reads its first block from the index instead of
sorting every run, and on recorded_bytes (the admin page's largest runs)
(benchmarks/bench_scale.py: 10,000 runs on PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METRICS = ("final_train_loss", "final_train_accuracy", "final_val_loss", "final_val_accuracy")


def upgrade() -> None:
    for column in METRICS:
        op.create_index(f"ix_runs_{column}_id", "runs", [column, sa.text("id DESC")])
    # read backwards: recorded_bytes DESC, id DESC, the order of the admin page's largest runs
    op.create_index("ix_runs_recorded_bytes_id", "runs", ["recorded_bytes", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_recorded_bytes_id", table_name="runs")
    for column in METRICS:
        op.drop_index(f"ix_runs_{column}_id", table_name="runs")
