"""When a build last left a tag (``builds.untagged``): `deb-orchestrator gc` collects a build in no tag once this
(or its completion, for a build never untagged) is older than its retention. Builds untagged before this
revision have none: their completion counts.

Revision ID: 0004_build_untagged
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_build_untagged"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("untagged", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("untagged")
