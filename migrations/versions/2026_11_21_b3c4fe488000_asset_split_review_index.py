"""asset (project_id, split, review_state) index for the overview and annotator counts

Revision ID: b3c4fe488000
Revises: 0ab331eff681
Create Date: 2026-11-21 19:56:49.680004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b3c4fe488000"
down_revision: str | None = "0ab331eff681"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.create_index(
            "ix_asset_project_split_review", ["project_id", "split", "review_state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("asset", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_project_split_review")
