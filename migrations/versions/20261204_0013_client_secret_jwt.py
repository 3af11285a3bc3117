"""client secrets kept sealed for client_secret_jwt

A client registered with ``client_secret_jwt`` (RFC 7523 §2.2 with an HMAC) needs its secret as
the MAC key: it is kept sealed under ``IDP_DATA_KEY`` beside the digest. Other clients keep
only the digest.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:40:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_sealed', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('client', schema=None) as batch_op:
        batch_op.drop_column('secret_sealed')
