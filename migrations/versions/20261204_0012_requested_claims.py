"""requested claims (OIDC Core §5.5) kept with codes and tokens

The ``claims`` request parameter is stored with the code, and with every token of its family,
so the ID token, userinfo and refreshed ID tokens answer it; tokens also keep the login's
``acr`` for the refreshed ID token.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:00:00.000000
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.JSON(), nullable=True))
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('acr', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('token', schema=None) as batch_op:
        batch_op.drop_column('acr')
        batch_op.drop_column('claims')
    with op.batch_alter_table('authorization_code', schema=None) as batch_op:
        batch_op.drop_column('claims')
