"""dynamic client registration

Initial access tokens issued by platform admins (RFC 7591 §3) and the registration access
tokens of dynamically registered clients (RFC 7592), both stored as SHA-256 digests.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 21:50:00.000000
"""
from alembic import op
import sqlalchemy as sa
import idp.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('initial_access_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('last_used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_initial_access_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_initial_access_token_token_hash'))
    )
    op.create_table('registration_access_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_pk', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('initial_token_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_pk'], ['client.id'], name=op.f('fk_registration_access_token_client_pk_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['initial_token_id'], ['initial_access_token.id'], name=op.f('fk_registration_access_token_initial_token_id_initial_access_token'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_access_token')),
    sa.UniqueConstraint('client_pk', name=op.f('uq_registration_access_token_client_pk')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_registration_access_token_token_hash'))
    )
    with op.batch_alter_table('registration_access_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_access_token_initial_token_id'), ['initial_token_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('registration_access_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_access_token_initial_token_id'))
    op.drop_table('registration_access_token')
    op.drop_table('initial_access_token')
