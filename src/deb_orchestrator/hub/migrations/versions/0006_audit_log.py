"""The audit log (hub/audit.py): who changed what, when, from where; refused attempts counted per window.
Indexed by time (queries and, later, retention), action, user and object.

Revision ID: 0006_audit_log
Revises: 0005_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_audit_log"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=200), nullable=True),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("peer", sa.String(length=100), nullable=False),
        sa.Column("object_kind", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("object_name", sa.String(length=300), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_ts", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_ts", "audit", ["ts"])
    op.create_index("ix_audit_action", "audit", ["action"])
    op.create_index("ix_audit_user_name", "audit", ["user_name"])
    op.create_index("ix_audit_object", "audit", ["object_kind", "object_name"])


def downgrade() -> None:
    for name in ("ix_audit_object", "ix_audit_user_name", "ix_audit_action", "ix_audit_ts"):
        op.drop_index(name, table_name="audit")
    op.drop_table("audit")
