"""run groups (sweeps)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context, op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if _is_sqlite() and sa.inspect(op.get_bind()).has_table('run_groups'):
        return  # applied, but the process stopped before Alembic stamped it (see below)
    with _sqlite_foreign_keys_off():
        op.create_table('run_groups',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('base_spec', sa.JSON(), nullable=False),
        sa.Column('axes', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_run_groups'))
        )
        with op.batch_alter_table('runs', schema=None) as batch_op:
            batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f('ix_runs_group_id'), ['group_id'], unique=False)
            batch_op.create_foreign_key(batch_op.f('fk_runs_group_id_run_groups'), 'run_groups',
                                        ['group_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with _sqlite_foreign_keys_off():
        with op.batch_alter_table('runs', schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f('fk_runs_group_id_run_groups'),
                                     type_='foreignkey')
            batch_op.drop_index(batch_op.f('ix_runs_group_id'))
            batch_op.drop_column('group_id')
        op.drop_table('run_groups')


def _is_sqlite() -> bool:
    return op.get_context().dialect.name == 'sqlite'


@contextmanager
def _sqlite_foreign_keys_off():
    """SQLite's way to alter a referenced table (sqlite.org/lang_altertable.html, 12 steps).

    Batch mode copies `runs` and drops the original; with foreign keys on, that DROP deletes
    every run first and cascades into all recorded epochs, jobs and analyses. The pragma
    cannot change inside a transaction, so: commit the migrations before this one (each is
    already stamped), turn the keys off, alter in one transaction, check, turn them back on
    before the pooled connection serves anyone else. Other databases: nothing to do.
    """
    if not _is_sqlite():
        yield
        return
    if context.is_offline_mode():
        raise NotImplementedError('0004 on SQLite must run online: `netlens db upgrade`')
    raw = op.get_bind().connection.dbapi_connection
    execute: Callable = raw.execute
    if raw.in_transaction:
        raw.commit()
    execute('PRAGMA foreign_keys=OFF')
    execute('BEGIN')
    try:
        yield
        broken = execute('PRAGMA foreign_key_check').fetchall()
        if broken:
            raise RuntimeError(f'foreign keys broken by migration 0004: {broken[:5]}')
    except BaseException:
        raw.rollback()
        raise
    else:
        raw.commit()
    finally:
        execute('PRAGMA foreign_keys=ON')
