"""runs: an index on each final metric column, so that the runs table sorted by a metric
(the Runs grid, GET /api/v1/runs?sort=) reads its first block from the index instead of
sorting every run, and on recorded_bytes (the admin page's largest runs)
(benchmarks/bench_scale.py: 10,000 runs on PostgreSQL)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "final_train_loss",
    "final_train_accuracy",
    "final_val_loss",
    "final_val_accuracy",
    "recorded_bytes",
)


def upgrade() -> None:
    for column in COLUMNS:
        op.create_index(f"ix_runs_{column}", "runs", [column])


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_runs_{column}", table_name="runs")
