"""Plugins (docs/plugins.md, "deb-orchestrator"): a target's deb-mock plugins, those a request may add and hub
plugins' per-target options; the plugins each build runs; each task's plugin results.

Revision ID: 0008_plugins
Revises: 0007_web_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_plugins"
down_revision = "0007_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("targets") as t:
        t.add_column(sa.Column("plugins", sa.JSON(), nullable=False, server_default="{}"))
        t.add_column(sa.Column("request_plugins", sa.JSON(), nullable=False, server_default="[]"))
        t.add_column(sa.Column("policy", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("builds") as b:
        b.add_column(sa.Column("plugins", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("tasks") as k:
        k.add_column(sa.Column("plugins", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as k:
        k.drop_column("plugins")
    with op.batch_alter_table("builds") as b:
        b.drop_column("plugins")
    with op.batch_alter_table("targets") as t:
        for name in ("policy", "request_plugins", "plugins"):
            t.drop_column(name)
