"""The description of the open datasets, fixed in code: publisher, licence, data dictionary
(from publishing.contract and publishing.shape), dataset descriptions and keywords, and the
DCAT-AP catalog (JSON-LD) built from them and the datasets as publishing.opendata.datasets lists
them. Nothing here reads the database or the files; publishing.opendata builds and serves those.
"""

from __future__ import annotations

from typing import Any

from publishing.contract import ENTITY_COLUMNS, KIND_COLUMNS, KIND_LABELS
from publishing.shape import public_fields
from publishing.site import AUTHORITY

# -- licence ------------------------------------------------------------------------------

LICENCE_ID = "yantai-samr-open-data-1.0"
LICENCE_TITLE = "烟台市市场监督管理局开放数据许可（1.0 版）"
LICENCE_PATH = "/open-data#licence"
LICENCE_TEXT = (
    "本平台开放的数据由烟台市市场监督管理局依法公示。任何单位和个人均可免费获取、复制、传播、"
    "加工和利用这些数据（包括用于商业目的），无需申请，也无需另行取得授权。",
    "署名：使用数据时应注明来源“烟台市市场监督管理局信用信息公示平台”及数据版本或获取日期；"
    "加工、汇总后的数据不得声称由本局发布，也不得歪曲原意。",
    "保持同步：公示信息会因公示期满、信用修复、异议处理或更正而停止公示或变更。再发布本数据的，"
    "应通过变更接口 /api/v1/changes 或每日增量文件及时同步，及时撤下已停止公示的信息。",
    "个人信息：数据中的身份证号码、手机号码、银行卡号等个人信息已在发布前遮蔽，身份证号、联系电话、"
    "家庭住址、银行账号等字段不予公开；法定代表人（负责人）姓名属于依法公开的登记信息。"
    "不得将数据与其他信息比对、关联以识别或还原已遮蔽的个人信息，不得将数据用于违法用途。",
    "免责：数据按现状提供。本局尽力保证数据准确、及时，具体信息以作出决定的行政机关的法律文书为准；"
    "因使用数据产生的后果由使用者自行承担。对公示信息有异议的，可向作出决定的市场监督管理部门提出。",
)


def licence() -> dict[str, Any]:
    return {
        "id": LICENCE_ID,
        "title": LICENCE_TITLE,
        "url": LICENCE_PATH,
        "text": list(LICENCE_TEXT),
    }


# -- data dictionary ----------------------------------------------------------------------

TYPE_LABELS = {
    "text": "文本",
    "code": "代码",
    "enum": "枚举",
    "date": "日期（YYYY-MM-DD）",
    "datetime": "日期时间（ISO 8601）",
    "money": "金额（元，两位小数）",
    "int": "整数",
    "list": "列表（NDJSON 中为数组，CSV 中以 ; 分隔）",
    "bool": "是否（NDJSON 中为 true/false，CSV 中为 是/否）",
    "url": "网址（相对本站）",
}
# How each type appears in the NDJSON (JSON) form; null is always possible when empty.
JSON_TYPES = {"int": "integer", "list": "array", "bool": "boolean"}

# The record's own fields (publishing.shape.RECORD_META and the trailing timestamps).
META_FIELDS: dict[str, tuple[str, str, str]] = {
    "id": (
        "记录编号",
        "code",
        "记录的稳定编号，由信息类别和自然键生成，重新发布时不变；也是 /records/{id} 网址的一部分",
    ),
    "kind": (
        "信息类别",
        "enum",
        "blacklist（食品安全黑榜）、penalty（行政处罚）、credit_mark（信用标注）、"
        "return_pledge（线下无理由退货承诺）",
    ),
    "kind_label": ("信息类别名称", "text", "信息类别的中文名称"),
    "status": ("公示状态", "enum", "active 表示公示中；开放数据只包含公示中的记录"),
    "version": ("版本号", "int", "记录每次内容或公示状态变化加 1"),
    "url": ("网页地址", "url", "本记录公示页面的地址（相对本站）"),
    "entity_id": ("主体编号", "code", "统一社会信用代码；没有统一社会信用代码的个体工商户为注册号"),
    "district_code": ("所属区市代码", "code", "行政区划代码，如 370602（芝罘区）"),
    "district": ("所属区市", "text", "所属区市名称"),
    "date": (
        "日期",
        "date",
        "记录的日期：黑榜为发布日期，行政处罚为处罚决定日期，信用标注为标注日期，退货承诺为承诺日期",
    ),
    "publicity_until": (
        "公示截止日期",
        "date",
        "公示截止日期，期满后停止公示；为空表示公示至撤销为止",
    ),
    "repairable_from": (
        "可申请信用修复日期",
        "date",
        "最早可申请信用修复的日期（行政处罚）；为空表示不适用或不可提前修复",
    ),
    "issue_id": ("黑榜期次编号", "code", "黑榜期次的编号，对应 /blacklist/{issue_id}"),
    "first_published_at": ("首次公示时间", "datetime", "记录首次公示的时间（UTC）"),
    "updated_at": ("最近更新时间", "datetime", "记录内容或状态最近一次变化的时间（UTC）"),
}
# Where the public shape's value type differs from the source column's.
TYPE_OVERRIDES = {("return_pledge", "model_unit"): "bool"}
# The pages' labels where the source file's header (the contract's label) says less: the
# dictionary names a field as every page does (portal.templating.FIELD_LABELS, which publishing
# cannot import; tests/test_portal_small_fixes.py keeps the two the same). Keys stay as they are.
PAGE_LABELS = {
    "legal_rep": "法定代表人（负责人）",
    "address": "住所（经营场所）",
    "penalty.domain": "监管领域",  # the penalty file's header says 领域, the pages 监管领域
}

DATASET_DESCRIPTIONS = {
    "blacklist": "各级市场监督管理部门按期发布的食品安全“黑榜”条目：上榜主体、期次、涉案产品、"
    "违法事实和处理结果。",
    "penalty": "市场监督管理部门适用普通程序作出的行政处罚案件信息（简易程序案件不公示）：决定书文号、"
    "违法行为类型、违法事实、处罚依据、处罚种类、罚没金额、处罚机关和日期。",
    "credit_mark": "信用标注：信用风险分类结果、严重违法失信名单、经营异常名录、诚信示范单位等。"
    "规则设定为仅统计公开的标注类型不含在内。",
    "return_pledge": "作出线下无理由退货承诺的经营者：经营类别、退货和退款期限、退货条件与不适用商品。",
}
KEYWORDS = {
    "blacklist": ["食品安全", "黑榜", "信用"],
    "penalty": ["行政处罚", "市场监管", "信用"],
    "credit_mark": ["信用风险分类", "严重违法失信名单", "经营异常名录", "信用"],
    "return_pledge": ["消费维权", "无理由退货", "放心消费"],
}


def _column(kind: str, key: str):
    for col in (*ENTITY_COLUMNS, *KIND_COLUMNS.get(kind, ())):
        if col.key == key:
            return col
    return None


def dictionary(kind: str) -> list[dict[str, Any]]:
    """Every field of public_fields(kind), in order, with its Chinese label, type and meaning."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in public_fields(kind):
        if key in seen:
            continue
        seen.add(key)
        if key in META_FIELDS:
            label, type_, meaning = META_FIELDS[key]
        else:
            col = _column(kind, key)
            if col is None:
                raise KeyError(f"{kind}.{key} has no data-contract column")
            label, type_, meaning = col.label, col.type, col.meaning or col.label
            label = PAGE_LABELS.get(f"{kind}.{key}") or PAGE_LABELS.get(key) or label
        type_ = TYPE_OVERRIDES.get((kind, key), type_)
        out.append(
            {
                "key": key,
                "label": label,
                "type": type_,
                "type_label": TYPE_LABELS[type_],
                "json_type": JSON_TYPES.get(type_, "string"),
                "meaning": meaning,
            }
        )
    return out


# -- DCAT-AP catalog (JSON-LD) ----------------------------------------------------------

DCAT_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
}
IANA = "https://www.iana.org/assignments/media-types/"


def _literal(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "zh-Hans"}


def _date_time(value: str | None) -> dict[str, str] | None:
    return {"@value": value, "@type": "xsd:dateTime"} if value else None


def _distribution(base: str, kind: str, d: dict[str, Any], licence_ref: dict) -> dict[str, Any]:
    url = base + d["url"]
    dist: dict[str, Any] = {
        "@id": url,
        "@type": "dcat:Distribution",
        "dct:title": _literal(
            f"{KIND_LABELS[kind]}（{d['format'].upper()}"
            f"{'，gzip 压缩快照' if d['encoding'] else '，实时'}）"
        ),
        "dcat:downloadURL": {"@id": url},
        "dcat:accessURL": {"@id": url},
        "dcat:mediaType": {"@id": IANA + d["media_type"]},
        "dct:format": d["format"].upper(),
        "dct:license": licence_ref,
    }
    if d["encoding"] == "gzip":
        dist["dcat:compressFormat"] = {"@id": IANA + "application/gzip"}
    if d["bytes"] is not None:
        dist["dcat:byteSize"] = {"@value": str(d["bytes"]), "@type": "xsd:nonNegativeInteger"}
    if d["sha256"]:
        dist["spdx:checksum"] = {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": {"@value": d["sha256"], "@type": "xsd:hexBinary"},
        }
    return dist


def catalog(base_url: str, sets: list[dict[str, Any]], index: dict[str, Any] | None) -> dict:
    """A DCAT-AP catalog of the datasets in JSON-LD (absolute IRIs under base_url)."""
    base = base_url.rstrip("/")
    publisher = {
        "@id": base + "/#publisher",
        "@type": "foaf:Agent",
        "foaf:name": _literal(AUTHORITY),
    }
    licence_ref = {
        "@id": base + LICENCE_PATH,
        "@type": "dct:LicenseDocument",
        "dct:title": _literal(LICENCE_TITLE),
    }
    modified = max((s["last_update"] for s in sets if s["last_update"]), default=None)
    datasets_ld = []
    for s in sets:
        ds: dict[str, Any] = {
            "@id": f"{base}/open-data#{s['kind']}",
            "@type": "dcat:Dataset",
            "dct:identifier": s["kind"],
            "dct:title": _literal(s["title"]),
            "dct:description": _literal(s["description"]),
            "dcat:keyword": [_literal(k) for k in KEYWORDS[s["kind"]]],
            "dct:publisher": publisher,
            "dct:license": licence_ref,
            "dct:language": {
                "@id": "http://publications.europa.eu/resource/authority/language/ZHO"
            },
            "dct:spatial": _literal("山东省烟台市"),
            "dcat:landingPage": {"@id": f"{base}/open-data#{s['kind']}"},
            "dct:conformsTo": {"@id": f"{base}/api/v1/open-data"},
            "dcat:contactPoint": {
                "@type": "vcard:Organization",
                "vcard:fn": _literal(AUTHORITY),
                "vcard:hasURL": {"@id": base + "/"},
            },
            "dcat:distribution": [
                _distribution(base, s["kind"], d, licence_ref) for d in s["downloads"]
            ],
        }
        if s["last_update"]:
            ds["dct:modified"] = _date_time(s["last_update"])
        datasets_ld.append(ds)
    out: dict[str, Any] = {
        "@context": DCAT_CONTEXT,
        "@id": base + "/open-data/catalog.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": _literal("烟台市市场监管信用信息开放数据"),
        "dct:description": _literal(
            "烟台市市场监督管理局依法公示的食品安全黑榜、行政处罚、信用标注和"
            "线下无理由退货承诺数据，可免费下载和再利用。"
        ),
        "dct:publisher": publisher,
        "dct:license": licence_ref,
        "dct:language": {"@id": "http://publications.europa.eu/resource/authority/language/ZHO"},
        "foaf:homepage": {"@id": base + "/open-data"},
        "dcat:dataset": datasets_ld,
        "dcat:service": {
            "@id": base + "/api/v1/changes",
            "@type": "dcat:DataService",
            "dct:title": _literal("变更接口（按游标同步公示记录）"),
            "dcat:endpointURL": {"@id": base + "/api/v1/changes"},
            "dcat:endpointDescription": {"@id": base + "/schema/openapi.json"},
            "dcat:servesDataset": [{"@id": d["@id"]} for d in datasets_ld],
            "dct:license": licence_ref,
        },
    }
    if modified:
        out["dct:modified"] = _date_time(modified)
    if index:
        out["dct:hasVersion"] = index["version"]
    return out
