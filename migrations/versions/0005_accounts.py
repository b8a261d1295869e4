"""accounts, sessions, API tokens, login failures, workers, uploads; run owners

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from netlens.migrations.sqlite_batch import is_sqlite, sqlite_foreign_keys_off

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    if is_sqlite() and sa.inspect(op.get_bind()).has_table("users"):
        return  # applied, but the process stopped before Alembic stamped it
    with sqlite_foreign_keys_off("0005"):
        op.create_table(
            "users",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=80), nullable=False),
            sa.Column("password_hash", sa.String(length=200), nullable=False),
            sa.Column("is_admin", sa.Boolean(), nullable=False),
            sa.Column("disabled", sa.Boolean(), nullable=False),
            sa.Column("created_at", TZ, nullable=False),
            sa.Column("password_changed_at", TZ, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
            sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        )
        op.create_table(
            "web_sessions",
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("created_at", TZ, nullable=False),
            sa.Column("last_seen_at", TZ, nullable=False),
            sa.Column("expires_at", TZ, nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                ondelete="CASCADE",
                name=op.f("fk_web_sessions_user_id_users"),
            ),
            sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
        )
        op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
        op.create_index(op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"])
        op.create_table(
            "api_tokens",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", TZ, nullable=False),
            sa.Column("last_used_at", TZ, nullable=True),
            sa.Column("revoked_at", TZ, nullable=True),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                ondelete="CASCADE",
                name=op.f("fk_api_tokens_user_id_users"),
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
            sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        )
        op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
        op.create_table(
            "login_failures",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("name", sa.String(length=80), nullable=False),
            sa.Column("address", sa.String(length=64), nullable=False),
            sa.Column("at", TZ, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
        )
        for col in ("name", "address", "at"):
            op.create_index(op.f(f"ix_login_failures_{col}"), "login_failures", [col])
        op.create_table(
            "workers",
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("hostname", sa.String(length=200), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("queues", sa.String(length=100), nullable=False),
            sa.Column("device", sa.String(length=100), nullable=False),
            sa.Column("started_at", TZ, nullable=False),
            sa.Column("heartbeat_at", TZ, nullable=False),
            sa.Column("stopped_at", TZ, nullable=True),
            sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
        )
        op.create_table(
            "uploads",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("owner_id", sa.Integer(), nullable=True),
            sa.Column("kind", sa.String(length=10), nullable=False),
            sa.Column("original_name", sa.String(length=255), nullable=False),
            sa.Column("stored_name", sa.String(length=80), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("created_at", TZ, nullable=False),
            sa.ForeignKeyConstraint(
                ["owner_id"],
                ["users.id"],
                ondelete="SET NULL",
                name=op.f("fk_uploads_owner_id_users"),
            ),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
            sa.UniqueConstraint("stored_name", name=op.f("uq_uploads_stored_name")),
        )
        op.create_index(op.f("ix_uploads_owner_id"), "uploads", ["owner_id"])
        for table in ("runs", "run_groups"):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
                batch_op.create_index(batch_op.f(f"ix_{table}_owner_id"), ["owner_id"])
                batch_op.create_foreign_key(
                    batch_op.f(f"fk_{table}_owner_id_users"),
                    "users",
                    ["owner_id"],
                    ["id"],
                    ondelete="SET NULL",
                )
        # the admin page filters jobs by time
        op.create_index(op.f("ix_jobs_enqueued_at"), "jobs", ["enqueued_at"])


def downgrade() -> None:
    with sqlite_foreign_keys_off("0005"):
        op.drop_index(op.f("ix_jobs_enqueued_at"), table_name="jobs")
        for table in ("run_groups", "runs"):
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.drop_constraint(
                    batch_op.f(f"fk_{table}_owner_id_users"), type_="foreignkey"
                )
                batch_op.drop_index(batch_op.f(f"ix_{table}_owner_id"))
                batch_op.drop_column("owner_id")
        for table in (
            "uploads",
            "workers",
            "login_failures",
            "api_tokens",
            "web_sessions",
            "users",
        ):
            op.drop_table(table)
