"""Plugins a target switches off (docs/plugins.md, "deb-orchestrator"): the deb-mock plugins its builds run
without (``--disable-plugin``), e.g. one a builder's config enables; and those each build was submitted with.

Revision ID: 0009_disable_plugins
Revises: 0008_plugins
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_disable_plugins"
down_revision = "0008_plugins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("targets", "builds"):
        with op.batch_alter_table(table) as t:
            t.add_column(sa.Column("disable_plugins", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    for table in ("builds", "targets"):
        with op.batch_alter_table(table) as t:
            t.drop_column("disable_plugins")
