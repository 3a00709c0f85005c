"""The vocabulary of the data contract: kinds, columns with their Chinese headers, districts.

This is data, not logic: readers match headers against it, cleaning validates against it and
the open-data dictionary is generated from it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from publishing.codes import INVISIBLE_RE

KINDS = ("blacklist", "penalty", "credit_mark", "return_pledge")
KIND_LABELS = {
    "blacklist": "食品安全黑榜",
    "penalty": "行政处罚",
    "credit_mark": "信用标注",
    "return_pledge": "线下无理由退货承诺",
    "district_board": "蓝黄红榜",
}
# Short, URL-safe prefixes of record ids.
KIND_PREFIX = {
    "blacklist": "bl",
    "penalty": "pn",
    "credit_mark": "cm",
    "return_pledge": "rp",
    "district_board": "db",
}

DISTRICTS: dict[str, str] = {
    "370602": "芝罘区",
    "370611": "福山区",
    "370612": "牟平区",
    "370613": "莱山区",
    "370614": "蓬莱区",
    "370681": "龙口市",
    "370682": "莱阳市",
    "370683": "莱州市",
    "370685": "招远市",
    "370686": "栖霞市",
    "370687": "海阳市",
    "370671": "烟台高新技术产业开发区",
    "370672": "烟台经济技术开发区",
    "370600": "烟台市(市级)",
}
DISTRICT_SHORT = {
    "370602": "芝罘区",
    "370611": "福山区",
    "370612": "牟平区",
    "370613": "莱山区",
    "370614": "蓬莱区",
    "370681": "龙口市",
    "370682": "莱阳市",
    "370683": "莱州市",
    "370685": "招远市",
    "370686": "栖霞市",
    "370687": "海阳市",
    "370671": "高新区",
    "370672": "开发区",
    "370600": "市本级",
}
_DISTRICT_ALIASES: dict[str, str] = {
    "芝罘": "370602",
    "福山": "370611",
    "牟平": "370612",
    "莱山": "370613",
    "蓬莱": "370614",
    "蓬莱市": "370614",
    "龙口": "370681",
    "莱阳": "370682",
    "莱州": "370683",
    "招远": "370685",
    "栖霞": "370686",
    "海阳": "370687",
    "高新区": "370671",
    "烟台高新区": "370671",
    "高新技术产业开发区": "370671",
    "开发区": "370672",
    "烟台开发区": "370672",
    "经济技术开发区": "370672",
    "经济开发区": "370672",
    "烟台市": "370600",
    "市级": "370600",
    "市本级": "370600",
    "烟台市本级": "370600",
    "烟台市市级": "370600",
    "烟台市(市级)": "370600",
}


def district_code(value: str) -> str | None:
    """The district code for a name, short name or code; None when unknown. A short name may
    follow in brackets, as the contract's table writes them: 烟台经济技术开发区 (开发区)."""
    text = "".join(unicodedata.normalize("NFKC", value).split())  # （） → ()
    code = _district_code(text)
    if code is None and text.endswith(")") and "(" in text:
        name, _, short = text[:-1].rpartition("(")
        code = _district_code(name)
        if code != _district_code(short):  # 烟台市(芝罘区) names two districts
            return None
    return code


def _district_code(text: str) -> str | None:
    """district_code of a normalised text without a bracketed short name."""
    if text in DISTRICTS:
        return text
    for code, name in DISTRICTS.items():
        if text == name or text == "烟台市" + name:
            return code
    return _DISTRICT_ALIASES.get(text)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    type: str = "text"  # text | date | money | int | code | enum | list
    meaning: str = ""


ENTITY_COLUMNS: tuple[Column, ...] = (
    Column("uscc", "统一社会信用代码", ("社会信用代码", "信用代码"), False, "code",
           "18位统一社会信用代码(GB 32100-2015)"),
    Column("reg_no", "注册号", (), False, "code", "15位注册号(无统一社会信用代码的老个体工商户)"),
    Column("entity_name", "主体名称", ("企业名称", "生产经营者名称", "当事人名称", "商户名称", "单位名称"),
           True, "text", "市场主体名称"),
    Column("legal_rep", "法定代表人", ("负责人", "经营者"), False, "text", "法定代表人或负责人(公开登记信息)"),
    Column("district", "所属区市", ("区市", "辖区"), True, "enum", "所属区市"),
    Column("address", "住所", ("经营场所", "地址"), False, "text", "住所或经营场所"),
    Column("op", "操作", (), False, "enum", "新增 / 更新 / 撤销"),
)

KIND_COLUMNS: dict[str, tuple[Column, ...]] = {
    "blacklist": (
        Column("issue_no", "期次", (), True, "text", "黑榜期次,如 2022年第3期"),
        Column("publisher", "发布单位", (), True, "text", "发布黑榜的市场监督管理部门"),
        Column("issued_on", "发布日期", (), True, "date", "黑榜发布日期"),
        Column("responsible_persons", "责任人员", (), False, "list", "责任人员姓名"),
        Column("products", "涉案产品", (), False, "text", "涉案产品"),
        Column("violation", "违法事实", ("上榜原因",), True, "text", "违法事实"),
        Column("action", "处理结果", ("处罚决定",), False, "text", "处理结果"),
        Column("decision_no", "行政处罚决定书文号", (), False, "text", "关联的行政处罚决定书文号"),
        Column("publicity_until", "公示截止日期", (), False, "date", "公示截止日期"),
    ),
    "penalty": (
        Column("decision_no", "行政处罚决定书文号", ("决定书文号",), True, "text", "行政处罚决定书文号"),
        Column("procedure", "程序类型", (), False, "enum", "普通程序(一般程序);简易程序案件不公示"),
        Column("violation_type", "违法行为类型", (), True, "text", "违法行为类型"),
        Column("facts", "违法事实", ("主要违法事实",), True, "text", "主要违法事实"),
        Column("basis", "处罚依据", (), True, "text", "处罚依据"),
        Column("penalty_kinds", "处罚种类", ("处罚类别",), True, "list", "处罚种类"),
        Column("fine_yuan", "罚款金额(元)", (), False, "money", "罚款金额,单位:元"),
        Column("fine_wan", "罚款金额(万元)", (), False, "money", "罚款金额,单位:万元(发布时换算为元)"),
        Column("confiscated_yuan", "没收违法所得金额(元)", (), False, "money", "没收违法所得金额,单位:元"),
        Column("authority", "处罚机关", ("作出处罚决定机关",), True, "text", "作出处罚决定的机关"),
        Column("decided_on", "处罚决定日期", ("决定日期",), True, "date", "处罚决定日期"),
        Column("severity", "失信程度", (), False, "enum", "轻微 / 一般 / 严重,默认一般"),
        Column("domain", "领域", (), False, "text", "领域,如 食品、药品、特种设备"),
        Column("publicity_until", "公示截止日期", (), False, "date", "公示截止日期"),
    ),
    "credit_mark": (
        Column("scheme", "标注类型", (), True, "enum", "信用风险分类、严重违法失信名单、经营异常名录等"),
        Column("grade", "分类结果", ("等级",), False, "enum", "信用风险分类结果 A–E"),
        Column("domain", "监管领域", (), False, "text", "监管领域,如 通用、食品生产、特种设备"),
        Column("marked_on", "标注日期", ("认定日期",), True, "date", "标注或认定日期"),
        Column("valid_until", "有效期至", (), False, "date", "有效期至"),
        Column("reason", "列入原因", ("事由",), False, "text", "列入原因"),
    ),
    "return_pledge": (
        Column("category", "经营类别", ("行业",), True, "text", "经营类别"),
        Column("return_days", "退货期限(天)", (), True, "int", "承诺无理由退货期限(天),不少于7天"),
        Column("refund_days", "退款期限(天)", (), False, "int", "退款期限(天)"),
        Column("conditions", "退货条件", (), False, "text", "退货条件"),
        Column("exclusions", "不适用商品", ("除外商品",), False, "text", "不适用无理由退货的商品"),
        Column("pledged_on", "承诺日期", (), True, "date", "承诺日期"),
        Column("model_unit", "示范单位", (), False, "enum", "是否示范单位"),
        Column("status", "状态", (), False, "enum", "有效 / 撤销"),
    ),
}

# Columns that must never be published, whatever the kind (data contract, personal data).
FORBIDDEN_HEADERS = frozenset(
    {"身份证号", "身份证号码", "证件号码", "联系电话", "电话", "手机", "手机号", "手机号码",
     "家庭住址", "银行账号", "银行卡号", "id_number", "mobile", "phone", "home_address",
     "bank_account"}
)

# The column of each kind whose presence identifies the kind in a file without --kind.
KIND_SIGNATURE = {
    "blacklist": "issue_no",
    "credit_mark": "scheme",
    "return_pledge": "return_days",
    "penalty": "violation_type",
}

# Date column each kind is ordered by ("the record's date").
EVENT_DATE = {
    "blacklist": "issued_on",
    "penalty": "decided_on",
    "credit_mark": "marked_on",
    "return_pledge": "pledged_on",
}


def normalize_header(text: str) -> str:
    """Headers match after trimming, NFKC (full-width to half-width) and removing spaces and
    invisible characters (a zero-width space pasted into a header cell hides the column)."""
    return "".join(unicodedata.normalize("NFKC", INVISIBLE_RE.sub("", str(text))).split()).lower()


def columns_for(kind: str) -> tuple[Column, ...]:
    return ENTITY_COLUMNS + KIND_COLUMNS[kind]


def header_index(kind: str) -> dict[str, str]:
    """normalized header -> column key, for every label, alias and English key of the kind."""
    index: dict[str, str] = {}
    for col in columns_for(kind):
        for name in (col.key, col.label, *col.aliases):
            index[normalize_header(name)] = col.key
    return index
