"""lossless compression of stored tensors: a codec per run_tensors / run_arrays row

Rows written before this revision are "raw" (the column's server default); new rows say
"zstd" when their bytes were compressed (storage/arrays.py `pack`). Nothing is rewritten:
both kinds are read on the fly.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("run_tensors", "run_arrays")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("codec", sa.String(length=8), nullable=False, server_default="raw")
            )


def downgrade() -> None:
    # the code of revision 0006 cannot read compressed rows: refuse rather than lose them
    bind = op.get_bind()
    for table in TABLES:
        packed = bind.execute(sa.text(f"SELECT count(*) FROM {table} WHERE codec != 'raw'"))
        if packed.scalar():
            raise RuntimeError(
                f"{table} holds compressed rows: revision 0006 cannot read them; keep 0007"
            )
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("codec")
