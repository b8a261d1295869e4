"""run groups (sweeps)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from netlens.migrations.sqlite_batch import is_sqlite as _is_sqlite
from netlens.migrations.sqlite_batch import sqlite_foreign_keys_off

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if _is_sqlite() and sa.inspect(op.get_bind()).has_table("run_groups"):
        return  # applied, but the process stopped before Alembic stamped it (see below)
    with sqlite_foreign_keys_off("0004"):
        op.create_table(
            "run_groups",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("base_spec", sa.JSON(), nullable=False),
            sa.Column("axes", sa.JSON(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_run_groups")),
        )
        with op.batch_alter_table("runs", schema=None) as batch_op:
            batch_op.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f("ix_runs_group_id"), ["group_id"], unique=False)
            batch_op.create_foreign_key(
                batch_op.f("fk_runs_group_id_run_groups"),
                "run_groups",
                ["group_id"],
                ["id"],
                ondelete="SET NULL",
            )


def downgrade() -> None:
    with sqlite_foreign_keys_off("0004"):
        with op.batch_alter_table("runs", schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f("fk_runs_group_id_run_groups"), type_="foreignkey")
            batch_op.drop_index(batch_op.f("ix_runs_group_id"))
            batch_op.drop_column("group_id")
        op.drop_table("run_groups")
