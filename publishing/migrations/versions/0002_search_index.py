"""embedded search index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The tables of publishing/search/embedded.py (see publishing/search/schema.py), generation "0".
`disclosure reindex` rebuilds them under new index names and swaps them in; they hold derived
data only, so a later change of their shape is a new migration that drops them and a reindex.
SQLite: search_docs + the FTS5 table search_fts; PostgreSQL: search_docs with a tsvector.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = """id TEXT NOT NULL, type TEXT NOT NULL, entity_id TEXT, district TEXT, date TEXT,
    status TEXT, grade TEXT, uscc TEXT, reg_no TEXT, name_key TEXT, name_len INTEGER NOT NULL"""
_COVER = "type, district, status, grade, name_len"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE TABLE search_docs (rid INTEGER NOT NULL PRIMARY KEY, {_COLUMNS})")
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(name, py, pyi, body, tags, "
            "prefix='1', tokenize='unicode61')"
        )
        op.execute("CREATE UNIQUE INDEX ix_search_docs_id_0 ON search_docs (id)")
        op.execute(f"CREATE INDEX ix_search_docs_uscc_0 ON search_docs (uscc, {_COVER})")
        op.execute(f"CREATE INDEX ix_search_docs_reg_no_0 ON search_docs (reg_no, {_COVER})")
        op.execute("CREATE INDEX ix_search_docs_name_key_0 ON search_docs (name_key)")
        return
    op.execute(f"CREATE TABLE search_docs (rid BIGINT NOT NULL, {_COLUMNS}, tsv TSVECTOR NOT NULL)")
    op.execute("ALTER TABLE search_docs ADD CONSTRAINT search_docs_pk_0 PRIMARY KEY (id)")
    op.execute("CREATE UNIQUE INDEX ix_search_docs_rid_0 ON search_docs (rid)")
    op.execute("CREATE INDEX ix_search_docs_tsv_0 ON search_docs USING gin (tsv)")
    op.execute(
        "CREATE INDEX ix_search_docs_uscc_0 ON search_docs (uscc text_pattern_ops) "
        f"INCLUDE (rid, {_COVER})"
    )
    op.execute(
        "CREATE INDEX ix_search_docs_reg_no_0 ON search_docs (reg_no text_pattern_ops) "
        f"INCLUDE (rid, {_COVER})"
    )
    op.execute("CREATE INDEX ix_search_docs_name_key_0 ON search_docs (name_key)")
    op.execute("CREATE INDEX ix_search_docs_type_rid_0 ON search_docs (type, rid)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS search_docs")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
