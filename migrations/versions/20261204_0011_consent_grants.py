"""consent grants

What a person (an operator's account, or an organisation for its admin's certificate logins)
consented to give a relying party, remembered across logins.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 21:28:31.919525
"""
from alembic import op
import sqlalchemy as sa
import idp.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_grant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('granted_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(account_id IS NULL) <> (org_id IS NULL)', name=op.f('ck_consent_grant_one_holder')),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], name=op.f('fk_consent_grant_account_id_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['client.client_id'], name=op.f('fk_consent_grant_client_id_client'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisation.id'], name=op.f('fk_consent_grant_org_id_organisation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_grant')),
    sa.UniqueConstraint('account_id', 'client_id', name=op.f('uq_consent_grant_account_id_client_id')),
    sa.UniqueConstraint('org_id', 'client_id', name=op.f('uq_consent_grant_org_id_client_id'))
    )
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_grant_client_id'), ['client_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_grant_client_id'))

    op.drop_table('consent_grant')
