"""run_epochs.wall_time: when each recorded epoch was computed (Unix seconds), for the
curves' "wall time" x axis; runs recorded before have none (NULL)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("run_epochs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wall_time", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run_epochs", schema=None) as batch_op:
        batch_op.drop_column("wall_time")
