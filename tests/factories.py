"""Builders of small contract files for tests (real files, real encodings)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from publishing.codes import resident_id_check_char, uscc_check_char

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(n: int, area: str = "370602", head: str = "91") -> str:
    body = f"{n:09d}"
    first17 = head + area + body
    return first17 + uscc_check_char(first17)


def resident_id(birth: str = "19900101", seq: str = "123") -> str:
    first17 = "370602" + birth + seq
    return first17 + resident_id_check_char(first17)


PENALTY_HEADER = ["统一社会信用代码", "当事人名称", "法定代表人", "所属区市", "住所", "行政处罚决定书文号",
                  "程序类型", "违法行为类型", "违法事实", "处罚依据", "处罚种类", "罚款金额(元)",
                  "处罚机关", "处罚决定日期", "失信程度", "领域"]


def penalty_row(n: int, **over) -> dict[str, str]:
    row = {
        "统一社会信用代码": uscc(n),
        "当事人名称": f"烟台市芝罘区测试{n}食品有限公司",
        "法定代表人": "张三",
        "所属区市": "芝罘区",
        "住所": f"烟台市芝罘区南大街{n}号",
        "行政处罚决定书文号": f"烟芝市监罚〔2026〕{n}号",
        "程序类型": "普通",
        "违法行为类型": "经营超过保质期的食品",
        "违法事实": f"当事人经营超过保质期的食品,案值{n}元。",
        "处罚依据": "《中华人民共和国食品安全法》第一百二十四条第一款第(二)项",
        "处罚种类": "警告;罚款",
        "罚款金额(元)": "5000",
        "处罚机关": "烟台市芝罘区市场监督管理局",
        "处罚决定日期": "2026-06-01",
        "失信程度": "一般",
        "领域": "食品",
    }
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None,
              encoding: str = "utf-8-sig") -> Path:
    header = header or list(rows[0])
    with open(path, "w", encoding=encoding, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def write_ndjson(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def credit_mark_row(n: int, **over) -> dict[str, str]:
    row = {"统一社会信用代码": uscc(n), "主体名称": f"烟台测试{n}有限公司", "所属区市": "莱山区",
           "标注类型": "信用风险分类", "分类结果": "B", "监管领域": "通用", "标注日期": "2026-01-10"}
    row.update(over)
    return row


def blacklist_row(n: int, issue: str = "2026年第9期", **over) -> dict[str, str]:
    row = {"统一社会信用代码": uscc(n), "主体名称": f"烟台黑榜测试{n}超市", "所属区市": "芝罘区",
           "期次": issue, "发布单位": "烟台市芝罘区市场监督管理局", "发布日期": "2026-09-01",
           "涉案产品": "韭菜", "违法事实": "销售农药残留超标的韭菜", "处理结果": "罚款2000元"}
    row.update(over)
    return row


def pledge_row(n: int, **over) -> dict:
    row = {"uscc": uscc(n), "entity_name": f"烟台测试{n}商场", "district": "开发区",
           "address": f"烟台开发区长江路{n}号", "category": "商场", "return_days": 7,
           "pledged_on": "2025-03-15"}
    row.update(over)
    return row
