"""What an upheld objection may correct on a record, and the correction cleaned as a file's
would be. Any field of the record's public shape may be corrected but its identity and a
blacklist entry's issue's fields (correctable_fields), named by key or Chinese header
(correction_keys); the corrections are cleaned and masked as a file's cell of that column
(clean_corrections), and give the record's next version (corrected_version). Applying it
through the one writer is publishing.review's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from publishing import clock
from publishing.clean import KINDS, Cleaner
from publishing.commit import CORRECTED, ENTITIES, HELD_REASONS
from publishing.contract import EVENT_DATE, columns_for, header_index, normalize_header
from publishing.models import ACTIVE, WITHDRAWN
from publishing.plan import next_version, record_row
from publishing.rows import SourceRow
from publishing.rules import load_rules
from publishing.shape import ENTITY_KEYS, KIND_FIELDS

_CATEGORY_FIELD = {"penalty": "domain", "credit_mark": "scheme", "return_pledge": "category"}
_RULE_INPUTS = {"severity", "domain", "penalty_kinds"}  # what publishing/rules.py reads


@dataclass(frozen=True)
class Correction:
    """A record's cleaned corrections, and the dates its corrected row is published with."""

    values: dict[str, Any]  # the corrected fields, cleaned and masked as a file's are
    publicity_until: date | None
    repairable_from: date | None
    group_key: str | None  # a credit mark's group after the correction (scheme and domain)


# The entity's fields every record stores (plan.record_row), and its district (a record column):
# public fields of every kind. The pipeline's steering columns (公示截止日期, 罚款金额(万元), 操作, a
# pledge's 状态) are not fields of the published record (shape.KIND_FIELDS) and not corrected.
ENTITY_SIDE = frozenset({*ENTITY_KEYS, "district"}) - {"uscc", "reg_no"}
# A credit mark's scheme and domain (and date) are in its id, yet correctable: the correction
# moves the mark among its groups' marks (review._regroup, review._settle_mark; test_review_supersession).
# A later file carrying the corrected values (another id, same group and date) is held against
# the corrected mark (plan._corrected_twin), not added as a second current mark beside it.
_REGROUPED = {"credit_mark": frozenset({"scheme", "domain"})}
R_IDENTITY = ("字段 {names} 是记录的标识，不能更正：记录编号由它得出，更正后报送正确值的数据文件会"
              "另行公示一条记录；如有误，请选择“撤下公示”，由数据文件报送正确的记录")
# A blacklist issue's own fields (黑榜期次: the blacklist_issues row, which the writer sets from
# each entry it writes, commit.Writer._note_issue). Its 期次 and 发布单位 are the entries' identity
# too; its 发布日期 is not, and corrected on one entry it rewrote the issue's date while the
# issue's other entries kept the old one. A file sends the issue again, every entry at once.
_ISSUE_WIDE = {"blacklist": frozenset({"issue_no", "publisher", "issued_on"})}
R_ISSUE_WIDE = ("字段 {names} 属于整期黑榜（同一期次的各条记录共用），不能只更正一条记录；"
                "如有误，请由数据文件重新报送该期")


def identity_fields(kind: str) -> frozenset[str]:
    """The fields a record's id is made of, which no correction changes: the entity's USCC or
    注册号 and the kind's natural key (clean.KINDS: a penalty's 决定书文号; a blacklist entry's
    发布单位, 期次 and 涉案产品; a pledge's 住所). A corrected record keeps its id, so a later file
    with the corrected key would publish the record a second time beside it, and a corrected
    USCC would move the record to another entity; such a record is withdrawn and sent again."""
    if kind not in KINDS:  # a kind no file cleans (district boards): nothing is corrected
        return frozenset()
    keys = {k for k in KINDS[kind].key_columns if k != "entity"}
    return frozenset({"uscc", "reg_no", *keys} - _REGROUPED.get(kind, frozenset()))


def issue_fields(kind: str) -> frozenset[str]:
    """The fields of a blacklist entry that are its whole issue's and not its identity (发布日期):
    no correction of one entry changes them."""
    return _ISSUE_WIDE.get(kind, frozenset()) - identity_fields(kind)


def correctable_fields(kind: str) -> tuple[str, ...]:
    """The fields of a record of `kind` a correction may change, in the contract's column order:
    every field of its public shape but its identity and its blacklist issue's fields."""
    if kind not in KINDS:
        return ()
    public = {*ENTITY_SIDE, *KIND_FIELDS.get(kind, ())}
    fixed = identity_fields(kind) | issue_fields(kind)
    return tuple(c.key for c in columns_for(kind) if c.key in public and c.key not in fixed)


def correction_label(kind: str, key: str) -> str:
    """A field's Chinese name: its column's header in the data contract."""
    return next((c.label for c in columns_for(kind) if c.key == key), key)


def correction_keys(kind: str, fields: dict[str, Any]) -> dict[str, Any] | str:
    """The corrections keyed by column: a field is named by its key, its Chinese header or one
    of the header's aliases (contract.header_index, which the file readers match headers by);
    why they are refused when a name is unknown, an identity field, its issue's or given twice."""
    index = header_index(kind) if kind in KINDS else {}
    fixed, whole_issue = identity_fields(kind), issue_fields(kind)
    allowed = set(correctable_fields(kind))
    keyed: dict[str, Any] = {}
    names: dict[str, str] = {}  # key -> the name it was given by
    refused, identity, issue, twice = [], [], [], []
    for name, value in fields.items():
        key = index.get(normalize_header(name)) if isinstance(name, str) else None
        if key in fixed:
            identity.append(str(name))
        elif key in whole_issue:
            issue.append(str(name))
        elif key not in allowed:
            refused.append(str(name))
        elif key in keyed:
            twice.append(f"{correction_label(kind, key)}（{names[key]}、{name}）")
        else:
            keyed[key], names[key] = value, name
    problems = []
    if identity:
        problems.append(R_IDENTITY.format(names="、".join(identity)))
    if issue:
        problems.append(R_ISSUE_WIDE.format(names="、".join(issue)))
    if refused:
        labels = "、".join(correction_label(kind, k) for k in correctable_fields(kind))
        problems.append(f"字段 {'、'.join(refused)} 不能更正（可更正：{labels or '无'}）")
    if twice:
        problems.append(f"字段重复给出：{'；'.join(twice)}")
    return "；".join(problems) if problems else keyed


class InvalidCorrections(ValueError):
    """Corrections a decision cannot apply; the message lists every problem, in Chinese."""


def clean_corrections(
    conn: Connection,
    rows: dict[str, Any],
    per_record: dict[str, dict[str, Any]],
    tracking_no: str,
    now: datetime,
) -> dict[str, Correction]:
    """Each record's corrected fields, cleaned exactly as a file row of its kind would be
    (publishing.clean: formats, enumerations, 简易 refused, no future event date, masking),
    by cleaning the stored row with the corrections applied. When any correction is invalid,
    InvalidCorrections names every problem (the decision is refused, nothing is written)."""
    today = clock.beijing_date(now)
    names = _entity_names(conn, {rows[rid].entity_id for rid in per_record if rid in rows})
    cleaned: dict[str, Correction] = {}
    problems: list[str] = []
    for rid, fields in per_record.items():
        row = rows.get(rid)
        if row is None or (row.status == WITHDRAWN and row.status_reason in HELD_REASONS):
            continue  # nothing to correct: it left publication for good on a request
        result = _clean_one(row, fields, names.get(row.entity_id), tracking_no, today)
        if isinstance(result, str):
            problems.append(f"{rid}：{result}" if len(per_record) > 1 else result)
        else:
            cleaned[rid] = result
    if problems:
        raise InvalidCorrections("；".join(problems))
    return cleaned


def _entity_names(conn: Connection, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    query = select(ENTITIES.c.id, ENTITIES.c.name).where(ENTITIES.c.id.in_(sorted(ids)))
    return {i: n for i, n in conn.execute(query)}


def _clean_one(
    row: Any, fields: dict[str, Any], entity_name: str | None, tracking_no: str, today: date
) -> Correction | str:
    """The cleaned, masked values of the corrected fields, or why they are refused."""
    keyed = correction_keys(row.kind, fields)
    if isinstance(keyed, str):
        return keyed
    # The stored row with the corrections applied, as a source row: the whole row is cleaned,
    # so cross-field rules (a 信用风险分类 needs its grade, 期次 takes its year) hold too.
    raw = {
        **(row.data or {}),
        "uscc": row.entity_id,
        "entity_name": entity_name or row.entity_id,
        "district": row.district,
        **keyed,
    }
    result = Cleaner(row.kind, today, tracking_no).clean(SourceRow(tracking_no, 1, raw))
    if isinstance(result, list):
        return "；".join(
            f"{correction_label(row.kind, r.column)}（{r.column}）：{r.reason}"
            if r.column
            else r.reason
            for r in result
        )
    # The dates a file row with this content is published with: its own end date (公示截止日期,
    # 有效期至) when it gives one, else the publicity rules (one rule: plan.record_row's).
    dates = record_row(result, load_rules())
    # The entity's columns are cleaned into result.entity, the kind's into its fields.
    ent = result.entity
    side = {"entity_name": ent.name, "legal_rep": ent.legal_rep, "address": ent.address,
            "district": ent.district}
    return Correction(
        # masked by the cleaner, as a file's are
        {k: side[k] if k in side else result.fields.get(k) for k in keyed},
        dates["publicity_until"],
        dates["repairable_from"],
        # Only marks are grouped (supersession); other kinds' key is their id, never changed.
        dates["group_key"] if row.kind == "credit_mark" else None,
    )


def _publicity_inputs(kind: str) -> set[str]:
    """The fields a record's end of publicity and repair date are computed from."""
    return {EVENT_DATE[kind], *KINDS[kind].publicity, *_RULE_INPUTS}


def corrected_version(row: Any, correction: Correction | None) -> tuple[dict[str, Any], dict, dict]:
    """The record's next version with the cleaned corrections (see clean_corrections)."""
    new_values = correction.values if correction else {}
    district = new_values.get("district", row.district)  # a column of its own, not in data
    in_data = {k: v for k, v in new_values.items() if k != "district"}
    data = {**(row.data or {}), **in_data}
    before = {k: row.district if k == "district" else (row.data or {}).get(k)
              for k in new_values}
    event_date = row.event_date
    date_key = EVENT_DATE.get(row.kind)
    if date_key in new_values and new_values[date_key]:
        event_date = date.fromisoformat(new_values[date_key])
    publicity_until, repairable_from = row.publicity_until, row.repairable_from
    if correction and _publicity_inputs(row.kind) & set(new_values):
        publicity_until, repairable_from = correction.publicity_until, correction.repairable_from
    category_key = _CATEGORY_FIELD.get(row.kind, "")
    # The planner's hash: a later file with the corrected content is unchanged, not held.
    new = next_version(
        row, data, district=district, event_date=event_date, publicity_until=publicity_until,
        repairable_from=repairable_from, status=ACTIVE,
        status_reason=CORRECTED,  # files no longer change its content (plan.Planner._upsert)
        version=row.version + 1,
        category=data.get(category_key, row.category),
        grade=data.get("grade") if row.kind == "credit_mark" else row.grade,
    )
    return new, before, new_values
