"""Response and request models of the JSON API, for the OpenAPI schema at /schema.

The handlers build plain dicts (from publishing's public shape) and these Structs only describe
them: nothing is encoded or decoded through them. tests/test_openapi_shapes.py checks that every
JSON response has exactly the documented fields, and tests/test_api_hygiene.py (schemathesis)
that generated requests to the read operations get conforming answers.

A record's fields are generated from the data contract (publishing.opendata_catalog.dictionary,
itself made from publishing.contract and publishing.shape), one model per kind, so a column
added to the contract is documented without retyping it here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from portal import routes
from publishing.contract import KINDS
from publishing.opendata import CSV_CELLS, DELTA_LINES
from publishing.opendata_catalog import dictionary
from publishing.search.base import SORTS

Kind = Literal["blacklist", "penalty", "credit_mark", "return_pledge"]
Op = Literal["add", "change", "withdraw", "expire"]
RequestType = Literal["objection", "repair"]
RequestState = Literal["received", "accepted", "more_info", "approved", "rejected"]
SearchSort = Literal[SORTS]  # type: ignore[valid-type]

API_TAG = "开放数据与核查 (JSON)"

# -- published records, one model per kind --------------------------------------------------

# Realistic values (Yantai, USCCs whose check character is right) for the fields' examples.
EXAMPLE_RECORDS: dict[str, dict[str, Any]] = {
    "blacklist": {
        "id": "bl-5e0c2a9d71b84f36",
        "kind": "blacklist",
        "kind_label": "食品安全黑榜",
        "status": "active",
        "version": 1,
        "url": "/records/bl-5e0c2a9d71b84f36",
        "entity_id": "92370602MA3N4K7Q2T",
        "district_code": "370602",
        "district": "芝罘区",
        "date": "2026-09-01",
        "publicity_until": "2027-09-01",
        "repairable_from": None,
        "uscc": "92370602MA3N4K7Q2T",
        "reg_no": None,
        "entity_name": "烟台市芝罘区鑫盛蔬菜超市",
        "legal_rep": "刘海涛",
        "address": "烟台市芝罘区只楚路56号",
        "issue_no": "2026年第9期",
        "publisher": "烟台市芝罘区市场监督管理局",
        "issued_on": "2026-09-01",
        "responsible_persons": ["刘海涛"],
        "products": "韭菜",
        "violation": "销售腐霉利残留量超标的韭菜",
        "action": "没收违法所得，罚款2000元",
        "decision_no": "烟芝市监罚〔2026〕87号",
        "issue_id": "bi-b13ecec70b6f",
        "first_published_at": "2026-09-01T02:00:00+00:00",
        "updated_at": "2026-09-01T02:00:00+00:00",
    },
    "penalty": {
        "id": "pn-3f9c0a1b2c4d5e6f",
        "kind": "penalty",
        "kind_label": "行政处罚",
        "status": "active",
        "version": 1,
        "url": "/records/pn-3f9c0a1b2c4d5e6f",
        "entity_id": "91370602MA3CFQ2W8P",
        "district_code": "370602",
        "district": "芝罘区",
        "date": "2026-06-01",
        "publicity_until": "2027-06-01",
        "repairable_from": "2027-06-02",
        "uscc": "91370602MA3CFQ2W8P",
        "reg_no": None,
        "entity_name": "烟台市芝罘区福顺食品有限公司",
        "legal_rep": "王建国",
        "address": "烟台市芝罘区南大街128号",
        "decision_no": "烟芝市监罚〔2026〕112号",
        "procedure": "普通",
        "violation_type": "经营超过保质期的食品",
        "facts": "当事人于2026年3月在经营场所销售超过保质期的袋装饼干12袋，货值金额96元。",
        "basis": "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项",
        "penalty_kinds": ["警告", "没收违法所得", "罚款"],
        "fine_yuan": "5000.00",
        "confiscated_yuan": "96.00",
        "authority": "烟台市芝罘区市场监督管理局",
        "decided_on": "2026-06-01",
        "severity": "一般",
        "domain": "食品",
        "first_published_at": "2026-06-03T01:20:00+00:00",
        "updated_at": "2026-06-03T01:20:00+00:00",
    },
    "credit_mark": {
        "id": "cm-8a41d7e03b2f9c65",
        "kind": "credit_mark",
        "kind_label": "信用标注",
        "status": "active",
        "version": 2,
        "url": "/records/cm-8a41d7e03b2f9c65",
        "entity_id": "91370613MA3PL7E1X7",
        "district_code": "370613",
        "district": "莱山区",
        "date": "2026-01-10",
        "publicity_until": "2029-01-10",
        "repairable_from": None,
        "uscc": "91370613MA3PL7E1X7",
        "reg_no": None,
        "entity_name": "烟台莱山恒达建材有限公司",
        "legal_rep": "孙立民",
        "address": "烟台市莱山区港城东大街1099号",
        "scheme": "严重违法失信名单",
        "grade": "D",
        "domain": "通用",
        "marked_on": "2026-01-10",
        "valid_until": "2029-01-10",
        "reason": "因同一性质违法行为受到行政处罚后再次违法",
        "first_published_at": "2026-01-12T03:00:00+00:00",
        "updated_at": "2026-04-02T03:00:00+00:00",
    },
    "return_pledge": {
        "id": "rp-0d6b3c8e5a7f1294",
        "kind": "return_pledge",
        "kind_label": "线下无理由退货承诺",
        "status": "active",
        "version": 1,
        "url": "/records/rp-0d6b3c8e5a7f1294",
        "entity_id": "91370672MA3M8HJ60X",
        "district_code": "370672",
        "district": "烟台经济技术开发区",
        "date": "2025-03-15",
        "publicity_until": None,
        "repairable_from": None,
        "uscc": "91370672MA3M8HJ60X",
        "reg_no": None,
        "entity_name": "烟台开发区佳和商贸有限公司",
        "legal_rep": "赵敏",
        "address": "烟台经济技术开发区长江路218号",
        "category": "商场",
        "return_days": 7,
        "refund_days": 3,
        "conditions": "商品完好，不影响二次销售，凭购物凭证",
        "exclusions": "定制商品、鲜活易腐商品、已拆封的个人卫生用品",
        "pledged_on": "2025-03-15",
        "model_unit": True,
        "first_published_at": "2025-03-16T01:00:00+00:00",
        "updated_at": "2025-03-16T01:00:00+00:00",
    },
}
_NOT_NULL = frozenset({"id", "kind", "kind_label", "status", "version", "url"})
# Contract column types (publishing.contract.Column.type) whose JSON value is not a string.
_VALUE_TYPES: dict[str, Any] = {
    "int": int,
    "list": list[str],
    "bool": bool,
    "date": date,
    "datetime": datetime,
}


def _record_model(kind: str) -> type[msgspec.Struct]:
    """The public shape of a record of `kind` (publishing.shape.public_record): every key of
    public_fields(kind) is always there, null where the source had no value."""
    example = EXAMPLE_RECORDS[kind]
    fields = []
    for field in dictionary(kind):
        key = field["key"]
        if key == "kind":
            continue  # the tag (below): a record's kind tells the shapes apart
        text = field["label"]
        if field["meaning"] != field["label"]:
            text += "：" + field["meaning"]
        value_type = _VALUE_TYPES.get(field["type"], str)
        meta = msgspec.Meta(
            description=text,
            examples=[example[key]] if example.get(key) is not None else None,
        )
        annotated = Annotated[value_type, meta]
        fields.append((key, annotated if key in _NOT_NULL else Union[annotated, None]))  # noqa: UP007
    name = "".join(part.title() for part in kind.split("_")) + "Record"
    return msgspec.defstruct(
        name, fields, kw_only=True, module=__name__, tag_field="kind", tag=kind
    )


RECORD_MODELS: dict[str, type[msgspec.Struct]] = {kind: _record_model(kind) for kind in KINDS}
BlacklistRecord = RECORD_MODELS["blacklist"]
PenaltyRecord = RECORD_MODELS["penalty"]
CreditMarkRecord = RECORD_MODELS["credit_mark"]
ReturnPledgeRecord = RECORD_MODELS["return_pledge"]
# One of the kinds' shapes, told apart by `kind`.
PublicRecord = Union[BlacklistRecord, PenaltyRecord, CreditMarkRecord, ReturnPledgeRecord]  # noqa: UP007


# -- the change log -----------------------------------------------------------------------


class ChangeItem(msgspec.Struct, kw_only=True):
    seq: int
    op: Op
    record_id: str
    kind: Kind
    version: int
    at: str | None
    record: Annotated[
        PublicRecord | None,
        msgspec.Meta(
            description="记录当前的公示内容；已停止公示（撤销、期满）的为 null：按 record_id 删除"
        ),
    ]


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


class CursorConflict(msgspec.Struct, kw_only=True):
    """409 of /api/v1/changes: the cursor does not match the change log (a restored database)."""

    status_code: Annotated[int, msgspec.Meta(examples=[409])]
    status: Literal["cursor_ahead", "cursor_unknown"]
    detail: str
    since: Annotated[int, msgspec.Meta(description="游标中的 seq", examples=[2603])]
    cursor: Annotated[
        str,
        msgspec.Meta(
            description="传入的游标（纯整数 seq 时没有此项）", examples=["2590.3f9c0a1b2c4d5e6f"]
        ),
    ] = ""
    head: Annotated[int, msgspec.Meta(description="当前最新的 seq", examples=[2602])]
    resync_from: Annotated[int, msgspec.Meta(description="重新同步的 since", examples=[0])]
    snapshot_index: Annotated[str, msgspec.Meta(examples=["/open-data/index.json"])]


# -- credit check -------------------------------------------------------------------------


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
    problem: Annotated[
        str | None,
        msgspec.Meta(
            description="代码的问题：valid 为 false 时为不能查询的原因；15 位注册号疑似身份证号"
            "或校验位不符时仍照常查询（valid 为 true），此处提示",
            examples=["统一社会信用代码校验位错误"],
        ),
    ]
    known: bool
    entity: EntityRef | None
    matched: Annotated[
        list[EntityRef],
        msgspec.Meta(
            description="答复所汇总的市场主体：同一主体先以注册号、后又以统一社会信用代码公示时为"
            "两个（统一社会信用代码的在前，即 entity），各条记录合并计入；未查到时为空"
        ),
    ]
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


# -- open data ----------------------------------------------------------------------------


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


_SHA256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class SnapshotFile(msgspec.Struct, kw_only=True, tag_field="type", tag="snapshot"):
    """A snapshot file of index.json (publishing.opendata._write_kind): one kind in one format,
    gzip-compressed, as of `seq`."""

    kind: Kind
    format: Literal["csv", "ndjson"]
    version: Annotated[str, msgspec.Meta(examples=["2602"])]
    seq: int
    path: Annotated[str, msgspec.Meta(examples=["snapshots/2602/penalty.ndjson.gz"])]
    url: Annotated[str, msgspec.Meta(examples=["/open-data/snapshots/2602/penalty.ndjson.gz"])]
    media_type: Annotated[str, msgspec.Meta(examples=["application/x-ndjson"])]
    encoding: Literal["gzip"]
    rows: Annotated[int, msgspec.Meta(description="记录数")]
    bytes: Annotated[int, msgspec.Meta(description="文件（gzip 压缩后）的字节数")]
    sha256: Annotated[_SHA256, msgspec.Meta(description="文件（gzip 压缩后）的 SHA-256")]
    content_bytes: Annotated[
        int, msgspec.Meta(description="解压后内容的字节数（与实时下载的 Content-Length 相同）")
    ]
    content_sha256: Annotated[
        _SHA256,
        msgspec.Meta(description="解压后内容的 SHA-256（与实时下载的 ETag、Repr-Digest 对应）"),
    ]
    # the earliest end of publicity among its rows (the file is replaced after it); absent in
    # an index built before it existed
    publicity_ends: Annotated[
        date | None, msgspec.Meta(description="其中记录最早的公示截止日期：此后快照将重新生成")
    ] = None


class DeltaFile(msgspec.Struct, kw_only=True, tag_field="type", tag="delta"):
    """A day's delta file of index.json (publishing.opendata._write_delta): the day's change
    events (Beijing time) as /api/v1/changes gives them, one per line."""

    date: Annotated[date, msgspec.Meta(description="日期（北京时间）", examples=["2026-11-27"])]
    from_seq: Annotated[int | None, msgspec.Meta(description="当日第一个事件的 seq")]
    to_seq: Annotated[int | None, msgspec.Meta(description="当日最后一个事件的 seq")]
    events: Annotated[int, msgspec.Meta(description="事件数（行数）")]
    path: Annotated[str, msgspec.Meta(examples=["deltas/2026-11-27.ndjson"])]
    url: Annotated[str, msgspec.Meta(examples=["/open-data/deltas/2026-11-27.ndjson"])]
    media_type: Annotated[str, msgspec.Meta(examples=["application/x-ndjson"])]
    bytes: int
    sha256: _SHA256


class IndexLicence(msgspec.Struct, kw_only=True):
    id: str
    title: str
    url: str


class OpenDataIndex(msgspec.Struct, kw_only=True):
    # "SEQ", or "SEQ-BUILD" for a rebuild at a seq already built, and always "SEQ-BUILD" when
    # `versions` is "seq-build" (a history begun without index.json: a lost data folder)
    version: str
    versions: str | None = None
    seq: int
    seq_event: str | None = None  # identifies the event at seq: differs after a restore
    cursor: str | None = None  # "SEQ.seq_event": /api/v1/changes?since= to continue from here
    lineage: str | None = None  # the change log's history: new after a restore from a backup
    highest_seq: int | None = None
    build: int | None = None
    generated_at: str
    # written by every build; absent in an index built before they existed
    publisher: str | None = None
    licence: IndexLicence | None = None
    usage: str | None = None
    delta_lines: (
        Annotated[
            str,
            msgspec.Meta(
                description="增量文件每行的格式：changes 即 /api/v1/changes 的一项",
                examples=[DELTA_LINES],
            ),
        ]
        | None
    ) = None
    csv_cells: (
        Annotated[
            str,
            msgspec.Meta(
                description="CSV 快照中会被电子表格当作公式的文字单元格以 ' 开头（formula-quoted）",
                examples=[CSV_CELLS],
            ),
        ]
        | None
    ) = None
    files: list[SnapshotFile | DeltaFile]


# -- errors -------------------------------------------------------------------------------


class Problem(msgspec.Struct, kw_only=True):
    status_code: Annotated[int, msgspec.Meta(examples=[404])]
    detail: Annotated[str, msgspec.Meta(examples=["未找到该公示记录，请检查链接是否正确。"])]


class Gone(msgspec.Struct, kw_only=True):
    """A record (or blacklist issue) no longer published: portal.errors.gone."""

    id: Annotated[str, msgspec.Meta(examples=["pn-3f9c0a1b2c4d5e6f"])]
    status: Literal["gone"]
    status_code: Annotated[int, msgspec.Meta(examples=[410])]
    detail: Annotated[
        str,
        msgspec.Meta(
            examples=["该记录已停止公示（已撤销、公示期满或已被更新），不再提供详细内容。"]
        ),
    ]


class FieldErrors(msgspec.Struct, kw_only=True):
    """The errors of the requests API and the decision endpoint: field → what is wrong."""

    errors: Annotated[
        dict[str, str], msgspec.Meta(examples=[{"uscc": "统一社会信用代码校验位错误"}])
    ]
    # the intake's record problems (publishing.requests.IntakeError.records): only on its 4xx
    records: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="所选记录各自的问题（记录编号 → 说明），仅提交申请出错时有",
            examples=[{"pn-3f9c0a1b2c4d5e6f": "该记录不属于此市场主体"}],
        ),
    ] = {}  # noqa: RUF012 - msgspec copies a mutable default


def problem(description: str, example: dict[str, Any]) -> ResponseSpec:
    """A {status_code, detail} error with its example (none generated: they were random)."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        examples=[Example(value=example)],
        generate_examples=False,
    )


def field_errors(description: str, *examples: dict[str, Any]) -> ResponseSpec:
    return ResponseSpec(
        data_container=FieldErrors,
        description=description,
        examples=[Example(value=e) for e in examples],
        generate_examples=False,
    )


def documented(
    model: Any,
    description: str,
    examples: list[Example] | None = None,
    media_type: str = "application/json",
) -> ResponseSpec:
    """A response of `model` (a body the handler builds as a dict): for `responses=`."""
    return ResponseSpec(
        data_container=model,
        description=description,
        examples=examples,
        media_type=media_type,
        generate_examples=False,
    )


def html_error(description: str) -> ResponseSpec:
    """An error answered as an HTML page: the paths outside /api/ (portal.errors.handle_error)."""
    return ResponseSpec(
        data_container=str, description=description, media_type="text/html", generate_examples=False
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
        "detail": "未查询到代码为 91370602MA3CFQ2W8P 的市场主体的公示信息。本系统只收录有公示记录的主体。",
    },
)
GONE_RECORD = ResponseSpec(
    data_container=Gone,
    description="已停止公示（已撤销、公示期满或已被更新），不再提供详细内容",
    examples=[
        Example(
            value={
                "id": "pn-3f9c0a1b2c4d5e6f",
                "status": "gone",
                "status_code": 410,
                "detail": "该记录已停止公示（已撤销、公示期满或已被更新），不再提供详细内容。",
            }
        )
    ],
    generate_examples=False,
)


# -- the JSON twins of the pages (portal.pages) ---------------------------------------------

KindCounts = msgspec.defstruct(
    "KindCounts", [(kind, int) for kind in KINDS], kw_only=True, module=__name__
)


class KindSummary(msgspec.Struct, kw_only=True):
    kind: Kind
    label: Annotated[str, msgspec.Meta(examples=["行政处罚"])]
    count: Annotated[int, msgspec.Meta(description="公示中的记录数")]
    url: Annotated[str, msgspec.Meta(examples=["/penalties"])]


class DistrictSummary(msgspec.Struct, kw_only=True):
    code: Annotated[str, msgspec.Meta(examples=["370602"])]
    name: Annotated[str, msgspec.Meta(examples=["芝罘区"])]
    counts: KindCounts
    total: int


class BlacklistIssue(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(examples=["bi-b13ecec70b6f"])]
    issue_no: Annotated[str, msgspec.Meta(examples=["2026年第9期"])]
    publisher: Annotated[str, msgspec.Meta(examples=["烟台市芝罘区市场监督管理局"])]
    district_code: str | None
    district: str | None
    issued_on: date
    entry_count: Annotated[int, msgspec.Meta(description="公示中的条目数")]
    url: Annotated[str, msgspec.Meta(examples=["/blacklist/bi-b13ecec70b6f"])]


class RequestFigures(msgspec.Struct, kw_only=True):
    """Objections and credit repair, counts only (publishing.request_queries.public_figures)."""

    received: int
    received_repair: int
    received_objection: int
    repaired: int
    repaired_records: int
    objections_upheld: int
    decided: int
    median_workdays_to_decide: int | float | None


class HomePage(msgspec.Struct, kw_only=True):
    kinds: list[KindSummary]
    districts: list[DistrictSummary]
    latest_issues: list[BlacklistIssue]
    requests: RequestFigures


class Entity(msgspec.Struct, kw_only=True):
    """A market entity (publishing.shape.public_entity)."""

    id: Annotated[
        str, msgspec.Meta(description="统一社会信用代码，或注册号", examples=["91370602MA3CFQ2W8P"])
    ]
    uscc: str | None
    reg_no: str | None
    name: Annotated[str, msgspec.Meta(examples=["烟台市芝罘区福顺食品有限公司"])]
    former_names: list[str]
    legal_rep: str | None
    district_code: str | None
    district: str | None
    address: str | None
    url: Annotated[str, msgspec.Meta(examples=["/entities/91370602MA3CFQ2W8P"])]
    updated_at: datetime | None


class SearchQueryEcho(msgspec.Struct, kw_only=True):
    q: str
    kind: list[str]
    district: str | None
    status: str | None
    grade: str | None
    sort: SearchSort
    page: int


class SearchHit(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(examples=["91370602MA3CFQ2W8P"])]
    type: Literal["entity", "blacklist", "penalty", "credit_mark", "return_pledge"]
    type_label: str
    title: str
    url: str
    highlight: Annotated[str, msgspec.Meta(description="HTML 片段，匹配处以 <mark> 标出")]
    district_code: str | None
    district: str | None
    date: str | None
    grade: str | None
    status: str | None


class FacetValue(msgspec.Struct, kw_only=True):
    value: str
    label: str
    count: int
    selected: bool
    url: Annotated[str, msgspec.Meta(description="选中或取消该项的搜索页地址")]


class SearchPage(msgspec.Struct, kw_only=True):
    query: SearchQueryEcho
    code: Annotated[str | None, msgspec.Meta(description="查询词中的统一社会信用代码或注册号")]
    code_problem: Annotated[
        str | None,
        msgspec.Meta(
            description="形似代码但不正确时的原因", examples=["统一社会信用代码校验位错误"]
        ),
    ]
    exact_match: Annotated[Entity | None, msgspec.Meta(description="代码完全匹配的市场主体")]
    total: int
    capped: bool
    facets_capped: bool
    truncated: bool
    code_hint: bool
    pages: int
    withheld: Annotated[
        int,
        msgspec.Meta(description="本页中公示期已满、尚待夜间到期处理而未显示的结果数（total 已扣除）"),
    ] = 0
    beyond_last_page: bool
    last_page_url: str | None
    search_unavailable: bool
    relaxed: Annotated[
        bool,
        msgspec.Meta(
            description="查询词原样没有结果，结果来自放宽后的查询：忽略了“有限公司”等组织形式、"
            "拆开了开头的地名"
        ),
    ]
    per_page: int
    hits: list[SearchHit]
    facets: Annotated[
        dict[str, list[FacetValue]],
        msgspec.Meta(description="分面：type（信息类别）、district、status、grade → 各取值及数量"),
    ]


class Badges(msgspec.Struct, kw_only=True):
    on_blacklist: bool
    serious_dishonest: bool
    lists: Annotated[list[str], msgspec.Meta(examples=[["严重违法失信名单"]])]
    objection_pending: bool
    return_pledge: bool


# The profile's records by kind: a kind without records is left out (not required; the
# default only makes it optional, it is never sent as null).
RecordsByKind = msgspec.defstruct(
    "RecordsByKind",
    [(kind, list[model], None) for kind, model in RECORD_MODELS.items()],
    kw_only=True,
    module=__name__,
)


class EntityProfile(msgspec.Struct, kw_only=True):
    entity: Entity
    linked_entities: Annotated[
        list[Entity],
        msgspec.Meta(
            description="同一主体在有统一社会信用代码之前仅以注册号公示的档案：其记录已并入本档案"
            "（/entities/{注册号} 重定向到这里）"
        ),
    ]
    badges: Badges
    credit_marks: list[CreditMarkRecord]  # type: ignore[valid-type]
    records: RecordsByKind  # type: ignore[valid-type]
    record_count: int
    page_count: int
    feed_url: str
    next: str | None
    next_url: Annotated[str | None, msgspec.Meta(description="下一页（更早的记录）")]
    first_url: str | None


class RecordPage(msgspec.Struct, kw_only=True):
    record: PublicRecord
    objection_pending: Annotated[bool, msgspec.Meta(description="该记录的异议正在处理中")]


class BlacklistIndex(msgspec.Struct, kw_only=True):
    issues: list[BlacklistIssue]


class BlacklistIssuePage(msgspec.Struct, kw_only=True):
    issue: BlacklistIssue
    entries: list[BlacklistRecord]  # type: ignore[valid-type]


class ListingFilters(msgspec.Struct, kw_only=True):
    district: Annotated[str | None, msgspec.Meta(examples=["370602"])]
    from_: Annotated[date | None, msgspec.Meta(examples=["2026-01-01"])] = msgspec.field(
        name="from"
    )
    to: date | None
    category: str | None
    grade: str | None


PAGE_TOKEN = "WyIyMDI2LTA2LTAxIiwicG4tM2Y5YzBhMWIyYzRkNWU2ZiJd"  # portal.pages.common.encode_token


def _listing_model(kind: str) -> type[msgspec.Struct]:
    """The JSON of a listing page of `kind` (portal.pages.listings.listing_data)."""
    api = routes.api_path(routes.KIND_LISTING[kind])
    token = Annotated[str | None, msgspec.Meta(description="翻页令牌", examples=[PAGE_TOKEN])]

    def url(what: str, query: str) -> Any:
        return Annotated[str | None, msgspec.Meta(description=what, examples=[f"{api}?{query}"])]

    fields = [
        ("kind", Literal[kind]),
        ("kind_label", str),
        ("filters", ListingFilters),
        ("total", Annotated[int, msgspec.Meta(description="符合筛选条件的公示中记录数")]),
        ("capped", Annotated[bool, msgspec.Meta(description="true 时 total 只是下限")]),
        ("records", list[RECORD_MODELS[kind]]),
        ("next", token),
        ("next_url", url("下一页（较早的记录）的 JSON 地址", f"district=370602&next={PAGE_TOKEN}")),
        ("prev", token),
        (
            "prev_url",
            url("上一页（较新的记录）的 JSON 地址", f"district=370602&before={PAGE_TOKEN}"),
        ),
        ("first_url", url("第一页的 JSON 地址（不在第一页时）", "district=370602")),
    ]
    name = "".join(part.title() for part in kind.split("_")) + "Listing"
    return msgspec.defstruct(name, fields, kw_only=True, module=__name__)


LISTING_MODELS = {kind: _listing_model(kind) for kind in routes.LISTING_KINDS.values()}


# -- objections and credit repair (portal.requests_api) -------------------------------------

_TRACKING_NO = Annotated[str, msgspec.Meta(examples=["YX20261127-000042"])]


class RequestReceipt(msgspec.Struct, kw_only=True):
    """The receipt of a submission (publishing.requests.Receipt.as_json)."""

    tracking_no: _TRACKING_NO
    access_code: Annotated[
        str | None,
        msgspec.Meta(
            description="查询码，只返回这一次；同一 Idempotency-Key 重放时无法再次给出则为 null",
            examples=["K7QHM3XPWA"],
        ),
    ]
    type: RequestType
    status: RequestState
    status_label: Annotated[str, msgspec.Meta(examples=["已接收，待初审"])]
    submitted_at: datetime
    review_due: date
    decision_due: date
    calendar_fallback: bool
    review_fallback: bool
    decision_fallback: bool
    status_url: Annotated[str, msgspec.Meta(examples=["/requests/YX20261127-000042"])]


class RequestStep(msgspec.Struct, kw_only=True):
    at: datetime
    action: Annotated[str, msgspec.Meta(examples=["submitted"])]
    status: RequestState
    note: str | None


class _RequestOutcome(msgspec.Struct, kw_only=True):
    """What a request's status and the decision endpoint's answer share: the fields of
    publishing.request_queries.public_view that publishing.review.decision_json answers with."""

    tracking_no: _TRACKING_NO
    type: RequestType
    status: RequestState
    status_label: str
    decision: Literal["approve", "reject"] | None
    outcome: Literal["withdraw", "correct"] | None
    decision_reason: str | None
    decided_at: datetime | None


class RequestStatus(_RequestOutcome, kw_only=True):
    """What the holder of the access code sees (publishing.request_queries.public_view)."""

    type_label: Annotated[str, msgspec.Meta(examples=["信用修复"])]
    entity_id: Annotated[str, msgspec.Meta(examples=["91370602MA3CFQ2W8P"])]
    entity_name: Annotated[str, msgspec.Meta(examples=["烟台市芝罘区福顺食品有限公司"])]
    record_ids: Annotated[list[str], msgspec.Meta(examples=[["pn-3f9c0a1b2c4d5e6f"]])]
    submitted_at: datetime
    review_due: date
    decision_due: date
    calendar_fallback: bool
    review_fallback: bool
    decision_fallback: bool
    overdue: bool
    steps: list[RequestStep]
    attachments: Annotated[int, msgspec.Meta(description="附件数")]


_VERSION = Annotated[
    int,
    msgspec.Meta(
        description="办理步骤的条数：作为决定接口的 expected_version，申请其后有变化时不作决定",
        examples=[3],
    ),
]


class ReviewedRequest(RequestStatus, kw_only=True):
    """A request as the decision API's clients read it (publishing.review.reviewer_view)."""

    version: _VERSION


class DecisionRecord(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(examples=["pn-3f9c0a1b2c4d5e6f"])]
    before: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="决定前：status、version 等", examples=[{"status": "active", "version": 1}]
        ),
    ]
    after: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="决定后：status、version，撤下的 status_reason，更正的字段",
            examples=[{"status": "withdrawn", "status_reason": "信用修复", "version": 2}],
        ),
    ]


class DecisionResult(_RequestOutcome, kw_only=True):
    """The decision endpoint's answer (publishing.review.decision_json and the records)."""

    version: _VERSION
    records: list[DecisionRecord]
    search_synced: Annotated[
        bool | None, msgspec.Meta(description="搜索索引是否已同步；没有记录变化时为 null")
    ]
