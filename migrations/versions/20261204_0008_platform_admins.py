"""platform admins

People who run the provider itself: username, password, TOTP secret and hashed recovery codes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import idp.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('platform_admin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('totp_confirmed', sa.Boolean(), nullable=False),
    sa.Column('recovery_codes', sa.JSON(), nullable=False),
    sa.Column('last_login_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_admin')),
    sa.UniqueConstraint('username', name=op.f('uq_platform_admin_username'))
    )


def downgrade() -> None:
    op.drop_table('platform_admin')
