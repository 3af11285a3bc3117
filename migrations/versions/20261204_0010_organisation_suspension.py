"""organisation suspension

A platform admin can suspend an organisation (暂停使用): when, why and by whom. While
``suspended_at`` is set nobody logs in or acts for the organisation; login sessions begun
before ``sessions_ended_at`` are over, also after a reactivation. Only adds columns, with
defaults, so the previous release keeps serving while it runs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 21:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

import idp.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', idp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sessions_ended_at', idp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspension_reason', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('suspended_by', sa.String(length=120), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('suspended_by')
        batch_op.drop_column('suspension_reason')
        batch_op.drop_column('sessions_ended_at')
        batch_op.drop_column('suspended_at')
