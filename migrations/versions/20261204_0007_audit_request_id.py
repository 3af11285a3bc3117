"""request id on audit events

Each audit event carries the id of the request that recorded it (empty for commands and the
SMS worker), the id the person sees on an error page and the access log line carries.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:15:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_audit_event_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_request_id'))
        batch_op.drop_column('request_id')
