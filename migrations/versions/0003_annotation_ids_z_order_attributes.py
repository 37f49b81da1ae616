"""annotation ids never reused, annotations.z_order, categories.attributes

SQLite gives a table without AUTOINCREMENT the largest rowid + 1, so deleting the newest annotation
handed its id to the next one, though exports promise ids stable across exports. On SQLite the
annotations table is rebuilt with AUTOINCREMENT (rows, ids, indexes and the predictions' links to
them kept) and its sequence starts past the largest id. PostgreSQL's SERIAL sequence never hands an
id out twice already. Also: ``annotations.z_order`` (drawing order, 0 by default) and
``categories.attributes`` (a class's attribute definitions).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _rebuild_annotations_sqlite(*, autoincrement: bool) -> None:
    """Recreate ``annotations`` with or without AUTOINCREMENT, keeping rows and ids.

    Connections have foreign keys on, and a PRAGMA cannot turn them off inside the migration's
    transaction: dropping the old table then sets every ``predictions.annotation_id`` to NULL
    (ON DELETE SET NULL), so those links are saved first and put back on the rebuilt table.
    """
    bind = op.get_bind()
    links = bind.execute(
        sa.text("SELECT id, annotation_id FROM predictions WHERE annotation_id IS NOT NULL")
    ).all()
    with op.batch_alter_table(
        "annotations", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ) as batch_op:
        if autoincrement:
            batch_op.add_column(sa.Column("z_order", sa.Integer(), nullable=False, server_default="0"))
        else:
            batch_op.drop_column("z_order")
    if links:
        bind.execute(
            sa.text("UPDATE predictions SET annotation_id = :a WHERE id = :p"),
            [{"a": a, "p": p} for p, a in links],
        )
    if autoincrement:
        # copying the rows with their ids already moves the sequence to the largest; said explicitly,
        # so that an empty table, or one whose newest rows were deleted before, starts right too
        top = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM annotations")).scalar() or 0
        have = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'annotations'")).first()
        if have is None:
            bind.execute(
                sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('annotations', :s)"), {"s": top}
            )
        elif have[0] < top:
            bind.execute(
                sa.text("UPDATE sqlite_sequence SET seq = :s WHERE name = 'annotations'"), {"s": top}
            )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_annotations_sqlite(autoincrement=True)
    else:
        op.add_column("annotations", sa.Column("z_order", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("categories", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    # a plain ALTER (SQLite >= 3.35): a batch rebuild of categories would trip the annotations'
    # ON DELETE RESTRICT while foreign keys are on
    op.drop_column("categories", "attributes")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_annotations_sqlite(autoincrement=False)
    else:
        op.drop_column("annotations", "z_order")
