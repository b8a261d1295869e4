"""runs.thinned_at and runs.thinning: a run whose heavy per-epoch data (tensors, analyses)
was thinned by the retention policy (storage/retention.py): when, by which policy, how many
epochs were kept and dropped and the bytes freed. Its run_epochs rows are all kept.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from netlens.migrations.sqlite_batch import sqlite_foreign_keys_off

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thinned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("thinning", sa.JSON(), nullable=True))


def downgrade() -> None:
    # dropping a column recreates `runs` on SQLite: with foreign keys on, dropping the old
    # table would delete every run's epochs, tensors and jobs (ON DELETE CASCADE)
    with sqlite_foreign_keys_off("0011"):
        with op.batch_alter_table("runs", schema=None) as batch_op:
            batch_op.drop_column("thinning")
            batch_op.drop_column("thinned_at")
