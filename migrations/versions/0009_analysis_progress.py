"""signature analyses: a progress line the worker writes while one runs ("computing t-SNE for
layer 2 of 3…"), shown by the signatures page's polling

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_analyses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_analyses", schema=None) as batch_op:
        batch_op.drop_column("progress")
