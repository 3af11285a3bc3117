"""index authorization codes by login session

A logout ends the codes its session was issued and not yet redeemed; they are found by ``sid``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:30:00.000000
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_code_sid'), ['sid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_code_sid'))
