"""Source repositories: each GitHub source's repository id, a rename or transfer, why it is unreachable.

Revision ID: 0002_source_repositories
Revises: 0001_baseline
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_source_repositories"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_repositories",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("repo_id", sa.Integer),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("renamed_to", sa.String(200)),
        sa.Column("unreachable", sa.Text),
        sa.Column("said_by", sa.String(140)),
        sa.Column("changed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_source_repositories_repo_id", "source_repositories", ["repo_id"])


def downgrade() -> None:
    op.drop_index("ix_source_repositories_repo_id", "source_repositories")
    op.drop_table("source_repositories")
