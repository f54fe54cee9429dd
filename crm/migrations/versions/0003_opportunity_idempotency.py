"""opportunities.idempotency_key: a double submit of the add form stores one deal

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00

Written by hand. The column is nullable (imported and older deals have no key) and unique, so the
second insert of a double submit fails and crm.opportunities returns the first deal instead.

SQLite cannot add a UNIQUE constraint to an existing table; Alembic's batch mode would copy the
table and drop the old one, and that DROP fails once orders.opportunity_id references any deal
(foreign keys are on, and the pragma cannot be turned off inside the migration's transaction).
SQLite enforces a UNIQUE constraint through a unique index anyway, so on SQLite the migration
adds the column in place and creates that index under the constraint's name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "opportunities"
COLUMN = "idempotency_key"
CONSTRAINT = "uq_opportunities_idempotency_key"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.add_column(sa.Column(COLUMN, sa.String(length=64), nullable=True))
        if _is_sqlite():
            batch_op.create_index(CONSTRAINT, [COLUMN], unique=True)
        else:
            batch_op.create_unique_constraint(CONSTRAINT, [COLUMN])


def downgrade() -> None:
    if _is_sqlite():
        with op.batch_alter_table(TABLE) as batch_op:
            batch_op.drop_index(CONSTRAINT)
        # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+), not a batch copy of the table.
        op.drop_column(TABLE, COLUMN)
        return
    with op.batch_alter_table(TABLE) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="unique")
        batch_op.drop_column(COLUMN)
