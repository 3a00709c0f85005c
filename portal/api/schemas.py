"""Response and request models of the open-data API, for the OpenAPI schema at /schema.

The handlers build plain dicts (from publishing's public shape) and these Structs describe them;
tests/test_api_hygiene.py checks with schemathesis that every response conforms.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

Kind = Literal["blacklist", "penalty", "credit_mark", "return_pledge"]
Op = Literal["add", "change", "withdraw", "expire"]

API_TAG = "开放数据与核查 (JSON)"


class PublicRecord(msgspec.Struct, kw_only=True):
    """A published record in its public shape (publishing.shape.public_record). The fields of
    its kind follow these common ones; /api/v1/open-data lists every field of every kind."""

    id: str
    kind: str
    kind_label: str
    status: str | None
    version: int
    url: str
    entity_id: str | None
    district_code: str | None
    district: str | None
    date: str | None
    publicity_until: str | None
    repairable_from: str | None
    uscc: str | None
    reg_no: str | None
    entity_name: str | None
    legal_rep: str | None
    address: str | None
    first_published_at: str | None
    updated_at: str | None


class ChangeItem(msgspec.Struct, kw_only=True):
    seq: int
    op: Op
    record_id: str
    kind: str
    version: int
    at: str | None
    record: PublicRecord | None


class ChangesPage(msgspec.Struct, kw_only=True):
    changes: list[ChangeItem]
    next: Annotated[
        str,
        msgspec.Meta(
            description="下一次请求的 since：游标字符串（seq 加上该 seq 对应事件的标识），原样传回",
            examples=["2602.3f9c0a1b2c4d5e6f"],
        ),
    ]
    has_more: bool


class EntityRef(msgspec.Struct, kw_only=True):
    id: str
    name: str
    url: str


class BlacklistEntry(msgspec.Struct, kw_only=True):
    record_id: str
    issue_id: str | None
    issue_no: str | None
    date: str | None
    url: str


class ListMark(msgspec.Struct, kw_only=True):
    record_id: str
    scheme: str | None
    date: str | None
    valid_until: str | None
    url: str


class PenaltyRef(msgspec.Struct, kw_only=True):
    record_id: str
    decision_no: str | None
    date: str | None
    url: str


class PenaltySummary(msgspec.Struct, kw_only=True):
    count: int
    records: list[PenaltyRef]


class CreditCheckResult(msgspec.Struct, kw_only=True):
    input: str
    code: str
    valid: bool
    code_type: Literal["uscc", "reg_no"] | None
    problem: str | None
    known: bool
    entity: EntityRef | None
    listed: bool
    blacklist: list[BlacklistEntry]
    lists: list[ListMark]
    penalties: PenaltySummary


class CreditCheckResponse(msgspec.Struct, kw_only=True):
    as_of: int
    count: int
    results: list[CreditCheckResult]


class CreditCheckRequest(msgspec.Struct, kw_only=True):
    uscc: list[str]


class Field(msgspec.Struct, kw_only=True):
    key: str
    label: str
    type: str
    type_label: str
    json_type: str
    meaning: str


class Download(msgspec.Struct, kw_only=True):
    format: Literal["csv", "ndjson"]
    url: str
    media_type: str
    encoding: Literal["gzip"] | None
    rows: int | None
    bytes: int | None
    sha256: str | None


class Dataset(msgspec.Struct, kw_only=True):
    kind: Kind
    title: str
    description: str
    row_count: int
    last_update: str | None
    snapshot_version: str | None
    snapshot_current: bool
    downloads: list[Download]
    fields: list[Field]


class Licence(msgspec.Struct, kw_only=True):
    id: str
    title: str
    url: str
    text: list[str]


class OpenDataPage(msgspec.Struct, kw_only=True):
    title: str
    publisher: str
    as_of: int
    licence: Licence
    datasets: list[Dataset]
    snapshot: dict[str, Any] | None
    index_url: str | None  # None until the first build
    catalog_url: str
    changes_url: str
    credit_check_url: str


class IndexFile(msgspec.Struct, kw_only=True):
    type: Literal["snapshot", "delta"]
    path: str
    url: str
    media_type: str
    bytes: int
    sha256: str
    # snapshots: the earliest end of publicity among its rows (the file is replaced after it)
    publicity_ends: str | None = None


class OpenDataIndex(msgspec.Struct, kw_only=True):
    version: str  # "SEQ", or "SEQ-BUILD" for a rebuild at a seq already built
    seq: int
    seq_event: str | None = None  # identifies the event at seq: differs after a restore
    cursor: str | None = None  # "SEQ.seq_event": /api/v1/changes?since= to continue from here
    highest_seq: int | None = None
    build: int | None = None
    generated_at: str
    files: list[IndexFile]


class Problem(msgspec.Struct, kw_only=True):
    status_code: int
    detail: str


class Gone(msgspec.Struct, kw_only=True):
    """A record (or blacklist issue) no longer published: portal.errors.gone."""

    id: str
    status: Literal["gone"]
    status_code: int
    detail: str


def problem(description: str, example: dict[str, Any]) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, description=description, examples=[Example(value=example)]
    )


TOO_MANY = problem(
    "请求过于频繁（见 Retry-After 响应头）",
    {"status_code": 429, "detail": "请求过于频繁，请在 12 秒后重试。"},
)
BAD_REQUEST = problem("参数不正确", {"status_code": 400, "detail": "请求参数格式不正确：since"})
NOT_FOUND = problem("没有该文件", {"status_code": 404, "detail": "您访问的页面不存在。"})
NO_ENTITY = problem(
    "没有该主体的公示信息（未知的代码，或其记录均已停止公示）",
    {
        "status_code": 404,
        "detail": "未查询到代码为 91370602000000001K 的市场主体的公示信息。本系统只收录有公示记录的主体。",
    },
)
GONE_RECORD = ResponseSpec(
    data_container=Gone,
    description="已停止公示（已撤销、公示期满或已被更新），不再提供详细内容",
    examples=[
        Example(
            value={
                "id": "pe-0123456789abcdef",
                "status": "gone",
                "status_code": 410,
                "detail": "该记录已停止公示（已撤销、公示期满或已被更新），不再提供详细内容。",
            }
        )
    ],
)
