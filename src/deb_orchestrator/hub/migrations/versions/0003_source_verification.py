"""How a build's source was authenticated: ``source_trust`` (archive, signature, caller, none) and one line for
people (``source_verification``). Builds made before this revision have empty values (unknown).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("source_trust", sa.String(length=20), nullable=False, server_default=""))
        batch.add_column(sa.Column("source_verification", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("source_verification")
        batch.drop_column("source_trust")
