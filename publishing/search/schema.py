"""Tables of the embedded search index, on the same database as the published data.

search_docs: one narrow row per document (id, type, filters, codes, exact-name key and name
length), keyed by `rid` = (MAX_DAY - day of the document's date) << 24 | n: ascending rid meets
the newest documents first, so a search reads its first CAP matches and stops.

SQLite: search_fts, an FTS5 table (unicode61, with a one-character prefix index for
one-character queries) over tokens we make (publishing/search/text.py), rowid = rid. Columns:
name (bigrams of the names), py (joined pinyin syllable bigrams, then syllables), pyi (pinyin
initial trigrams, then bigrams), body (bigrams of the text fields), tags (filter values, so that
filters are part of the FTS match).
PostgreSQL: search_docs.tsv, a tsvector literal we write (weights A name, B pinyin, C initials,
D text; positions run on across them) with a GIN index; filters are plain columns. A rebuild is
clustered on rid, so that unordered scans also tend to meet the newest documents first.

The documents themselves are not stored: a search reads its page of hits from the published
data (publishing.search.documents), so the index holds only what matching and ranking need.

`disclosure reindex` builds `<table>_new` and renames it into place; index names carry a
generation suffix so that the next build's names never collide with the live ones.
The migration 0002 creates the first generation ("0").
"""

from __future__ import annotations

DOCS, FTS = "search_docs", "search_fts"
NEW, OLD = "_new", "_old"
# The code indexes also hold what a search needs of a document, so that a code prefix shared by
# a whole district (91370602…) is answered from the index alone.
_COVER = "type, district, status, grade, name_len"
_COLUMNS = """rid {int} NOT NULL {pk}, id TEXT NOT NULL, type TEXT NOT NULL, entity_id TEXT,
    district TEXT, date TEXT, status TEXT, grade TEXT, uscc TEXT, reg_no TEXT, name_key TEXT,
    name_len INTEGER NOT NULL"""


def tables(dialect: str, suffix: str = "") -> list[str]:
    if dialect == "sqlite":
        cols = _COLUMNS.format(int="INTEGER", pk="PRIMARY KEY")
        return [
            f"CREATE TABLE {DOCS}{suffix} ({cols})",
            f"CREATE VIRTUAL TABLE {FTS}{suffix} USING fts5(name, py, pyi, body, tags, "
            "prefix='1', tokenize='unicode61')",
        ]
    cols = _COLUMNS.format(int="BIGINT", pk="")
    return [f"CREATE TABLE {DOCS}{suffix} ({cols}, tsv TSVECTOR NOT NULL)"]


def indexes(dialect: str, suffix: str = "", gen: str = "0") -> list[str]:
    t = f"{DOCS}{suffix}"
    if dialect == "sqlite":
        return [
            f"CREATE UNIQUE INDEX ix_search_docs_id_{gen} ON {t} (id)",
            f"CREATE INDEX ix_search_docs_uscc_{gen} ON {t} (uscc, {_COVER})",
            f"CREATE INDEX ix_search_docs_reg_no_{gen} ON {t} (reg_no, {_COVER})",
            f"CREATE INDEX ix_search_docs_name_key_{gen} ON {t} (name_key)",
        ]
    return [
        f"ALTER TABLE {t} ADD CONSTRAINT search_docs_pk_{gen} PRIMARY KEY (id)",
        f"CREATE UNIQUE INDEX ix_search_docs_rid_{gen} ON {t} (rid)",
        f"CREATE INDEX ix_search_docs_tsv_{gen} ON {t} USING gin (tsv)",
        f"CREATE INDEX ix_search_docs_uscc_{gen} ON {t} (uscc text_pattern_ops) "
        f"INCLUDE (rid, {_COVER})",
        f"CREATE INDEX ix_search_docs_reg_no_{gen} ON {t} (reg_no text_pattern_ops) "
        f"INCLUDE (rid, {_COVER})",
        f"CREATE INDEX ix_search_docs_name_key_{gen} ON {t} (name_key)",
        f"CREATE INDEX ix_search_docs_type_rid_{gen} ON {t} (type, rid)",
    ]


def drops(dialect: str, suffix: str) -> list[str]:
    out = [f"DROP TABLE IF EXISTS {DOCS}{suffix}"]
    if dialect == "sqlite":
        out.append(f"DROP TABLE IF EXISTS {FTS}{suffix}")
    return out


def renames(dialect: str, old: str, new: str) -> list[str]:
    names = (DOCS, FTS) if dialect == "sqlite" else (DOCS,)
    return [f"ALTER TABLE {n}{old} RENAME TO {n}{new}" for n in names]
