"""The sample generator: deterministic, valid, realistic proportions, messy-but-valid values."""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from publishing.contract import DISTRICTS, district_code
from publishing.sample import FILES, generate
from publishing.sample.codes import _reg_no_check, resident_id_is_valid, uscc_is_valid

TODAY = date(2026, 11, 27)
N = 2000


# -- reading the files back ---------------------------------------------------------------
def _norm_code(s: str) -> str:
    return "".join(unicodedata.normalize("NFKC", s).upper().replace("-", "").split())


_DATE_FORMS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


def _date(v: object) -> tuple[date, int]:
    """(the date, which form: 0 ISO … 4 compact, 5 a spreadsheet date cell)."""
    if isinstance(v, date):
        return v, 5
    for form, pattern in enumerate(_DATE_FORMS):
        m = pattern.fullmatch(str(v))
        if m:
            return date(*map(int, m.groups())), form
    raise AssertionError(f"not a contract date: {v!r}")


def _csv(path: Path, encoding: str) -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def _xlsx(path: Path) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


class Files:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.penalty = _csv(out / FILES["penalty"], "gb18030")
        self.credit_mark = _csv(out / FILES["credit_mark"], "utf-8-sig")
        lines = (out / FILES["return_pledge"]).read_text("utf-8").splitlines()
        self.return_pledge = [json.loads(line) for line in lines]
        grid = _xlsx(out / FILES["blacklist"])
        self.bl_title, self.bl_header, self.bl_total = grid[0], grid[1], grid[-1]
        self.blacklist = [dict(zip(grid[1], row, strict=True)) for row in grid[2:-1]]


def _entity_id(row: dict) -> str:
    uscc = row.get("统一社会信用代码", row.get("uscc")) or ""
    return _norm_code(uscc) if uscc.strip() else row.get("注册号", row.get("reg_no"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    out = tmp_path_factory.mktemp("sample")
    generate(out, N, today=TODAY)
    return Files(out)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Files:
    out = tmp_path_factory.mktemp("sample20k")
    generate(out, 20_000, today=TODAY)
    return Files(out)


# -- tests --------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_other_seed_other_bytes(tmp_path):
    calls: list[tuple[str, int]] = []
    a = generate(
        tmp_path / "a", 300, seed=7, today=TODAY, progress=lambda k, n: calls.append((k, n))
    )
    b = generate(tmp_path / "b", 300, seed=7, today=TODAY)
    c = generate(tmp_path / "c", 300, seed=8, today=TODAY)
    assert set(a) == {"blacklist", "penalty", "credit_mark", "return_pledge"}
    for kind in a:
        assert a[kind].read_bytes() == b[kind].read_bytes(), kind
        assert a[kind].read_bytes() != c[kind].read_bytes(), kind
    assert {k for k, _ in calls} == set(a)  # a final progress call per kind


def test_file_formats(files):
    raw = (files.out / FILES["penalty"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # a real GB18030 export
    assert raw.count(b"\r\n") == len(files.penalty) + 1
    assert (files.out / FILES["credit_mark"]).read_bytes().startswith(b"\xef\xbb\xbf")
    assert "联系电话" in files.penalty[0] and "备注" in files.credit_mark[0]  # ignored columns
    assert "认定日期" in files.credit_mark[0] and "企业名称" in files.credit_mark[0]  # aliases
    assert files.bl_title[0] == '烟台市食品安全"黑榜"汇总'
    assert files.bl_header[1:4] == ["期次", "发布单位", "发布日期"]
    assert files.bl_total[0] == "合计"
    cells = Counter(_date(r["发布日期"])[1] for r in files.blacklist)
    assert cells[5] > 0.8 * len(files.blacklist)  # mostly real Excel date cells
    assert set(files.return_pledge[0]) >= {"entity_name", "category", "return_days", "pledged_on"}


def test_row_counts_and_proportions(files):
    assert len(files.penalty) == round(0.6 * N)
    assert len(files.blacklist) == 20  # the minimum
    assert 10 <= len(files.return_pledge) <= 40  # ≈ 1.13 %
    marks = Counter((r["标注类型"], r["监管领域"]) for r in files.credit_mark)
    assert marks[("信用风险分类", "通用")] == N  # every entity once
    assert 65 <= marks[("经营异常名录", "")] <= 140  # ≈ 5 %
    assert marks[("信用风险分类", "食品生产")] <= 15  # ≈ 0.2 %
    assert marks[("信用风险分类", "特种设备")] <= 8  # ≈ 0.05 %
    assert marks[("严重违法失信名单", "")] <= 10  # ≈ 0.1 %
    grades = Counter(r["分类结果"] for r in files.credit_mark if r["监管领域"] == "通用")
    for grade, share in {"A": 0.30, "B": 0.55, "C": 0.10, "D": 0.04, "E": 0.01}.items():
        assert abs(grades[grade] / N - share) < 0.04, (grade, grades)
    severity = Counter(r["失信程度"] for r in files.penalty)
    assert 0.06 < severity["轻微"] / len(files.penalty) < 0.14
    assert 0.72 < severity["一般"] / len(files.penalty) < 0.88
    districts = Counter(district_code(r["所属区市"]) for r in files.credit_mark)
    assert districts.most_common(1)[0][0] == "370602"  # 芝罘区 is the largest
    assert set(districts) <= set(DISTRICTS)
    domains = Counter(r["领域"] for r in files.penalty)
    assert domains.most_common(1)[0][0] == "食品"
    assert {"价格", "广告", "产品质量"} <= set(domains)
    procedures = Counter(r["程序类型"] for r in files.penalty)
    assert set(procedures) == {"普通", "一般"} and procedures["普通"] > 0.9 * len(files.penalty)


def test_names_are_realistic_and_mostly_unique(big):
    names = Counter(r["企业名称"] for r in big.credit_mark if r["监管领域"] == "通用")
    duplicates = sum(c - 1 for c in names.values() if c > 1)
    assert duplicates < 0.01 * 20_000
    text = " ".join(names)
    for word in ("有限公司", "(个体工商户)", "烟台市芝罘区", "龙口市", "山东", "专业合作社"):
        assert word in text, word


def test_codes_are_valid(files, big):
    for f in (files, big):
        rows = [*f.penalty, *f.credit_mark, *f.blacklist]
        rows += [{"统一社会信用代码": p.get("uscc", ""), "注册号": p.get("reg_no")}
                 for p in f.return_pledge]  # fmt: skip
        reg_nos = 0
        for row in rows:
            uscc = row["统一社会信用代码"] or ""
            if uscc.strip():
                assert uscc_is_valid(_norm_code(uscc)), uscc
            else:
                reg = row["注册号"]
                assert len(reg) == 15 and reg.isdigit() and _reg_no_check(reg[:14]) == reg[14]
                reg_nos += 1
        assert reg_nos > 0
    prefixes = Counter(_entity_id(r)[:2] for r in big.credit_mark if r["监管领域"] == "通用")
    assert prefixes["92"] > prefixes["91"] > prefixes["93"] > 0
    assert prefixes["12"] > 0 and prefixes["52"] > 0 and prefixes["N2"] > 0
    # ≈ 1 % old individual businesses without a USCC (their id is the 15-digit reg_no)
    olds = sum(1 for r in big.credit_mark if r["监管领域"] == "通用" and not r["统一社会信用代码"])
    assert 100 <= olds <= 300


def test_historical_area_codes_belong_to_penglai(big):
    historical: Counter[str] = Counter()
    for row in big.credit_mark:
        uscc = _norm_code(row["统一社会信用代码"])
        if uscc[2:8] in ("370684", "370634"):
            assert district_code(row["所属区市"]) == "370614", row  # 蓬莱区, from 所属区市
            if row["监管领域"] == "通用":
                historical[uscc[2:8]] += 1
    assert historical["370684"] > 0 and historical["370634"] > 0
    assert 0.015 < sum(historical.values()) / 20_000 < 0.045, historical  # ≈ 3 %


def test_natural_keys_unique(files, big):
    for f in (files, big):
        keys = [(_entity_id(r), r["标注类型"], r["监管领域"] or "通用") for r in f.credit_mark]
        assert len(keys) == len(set(keys))
        brackets = re.compile(r"[\[【(（〔](\d{4})[\]】)）〕]")
        numbers = [brackets.sub(r"〔\1〕", unicodedata.normalize("NFKC", r["行政处罚决定书文号"]))
                   for r in f.penalty]  # fmt: skip
        assert len(numbers) == len(set(numbers))
        keys = [(_entity_id(p), p["address"]) for p in f.return_pledge]
        assert len(keys) == len(set(keys))
        keys = []
        for r in f.blacklist:
            issued, _ = _date(r["发布日期"])
            issue = r["期次"] if "年" in r["期次"] else f"{issued.year}年{r['期次']}"
            keys.append((r["发布单位"], issue, _entity_id(r), r["涉案产品"]))
        assert len(keys) == len(set(keys))
        district = [district_code(r["所属区市"]) for r in (*f.penalty, *f.credit_mark)]
        assert None not in district
        assert None not in {district_code(p["district"]) for p in f.return_pledge}


def test_no_future_dates_and_penalties_within_three_years(files, big):
    for f in (files, big):
        for r in f.penalty:
            decided, _ = _date(r["处罚决定日期"])
            assert (TODAY - decided).days <= 3 * 366 and decided <= TODAY
        assert all(_date(r["认定日期"])[0] <= TODAY for r in f.credit_mark)
        assert all(_date(p["pledged_on"])[0] <= TODAY for p in f.return_pledge)
        assert all(_date(r["发布日期"])[0] <= TODAY for r in f.blacklist)
        for r in f.credit_mark:
            if r["有效期至"]:
                assert _date(r["有效期至"])[0] > _date(r["认定日期"])[0]


def test_messy_but_valid_values_present(big):
    f = big
    date_forms = Counter(_date(r["处罚决定日期"])[1] for r in f.penalty)
    date_forms += Counter(_date(r["认定日期"])[1] for r in f.credit_mark)
    assert all(date_forms[k] > 0 for k in range(5)), date_forms
    usccs = [r["统一社会信用代码"] for r in (*f.penalty, *f.credit_mark) if r["统一社会信用代码"]]
    assert any(u != u.upper() for u in usccs)  # lower case
    assert any(" " in u.strip() for u in usccs) and any("-" in u for u in usccs)
    assert any(re.search("[０-９]", u) for u in usccs)  # full-width digits
    districts = {r["所属区市"] for r in (*f.penalty, *f.credit_mark)}
    assert districts & {"芝罘", "开发区", "高新区", "市本级"} and any(
        d.isdigit() for d in districts
    )
    fines = [r["罚款金额(元)"] for r in f.penalty if r["罚款金额(元)"]]
    assert any(x.endswith("元") and "," in x for x in fines)
    assert all(re.fullmatch(r"[\d,]+(\.\d\d)?元?", x) for x in fines)
    assert any(r["罚款金额(万元)"] for r in f.penalty)
    assert not any(r["罚款金额(万元)"] and r["罚款金额(元)"] for r in f.penalty)
    numbers = [r["行政处罚决定书文号"] for r in f.penalty]
    assert any("[" in n for n in numbers) and any("【" in n for n in numbers)
    assert all(re.fullmatch(r"\S+市监罚[〔\[【]20\d\d[〕\]】]\d+号", n) for n in numbers)
    assert any(re.fullmatch(r"第\d+期", r["期次"]) for r in f.blacklist) or len(f.blacklist) < 60
    messy = sum(
        1
        for r in f.penalty
        if _date(r["处罚决定日期"])[1]
        or r["统一社会信用代码"] != r["统一社会信用代码"].strip().upper()
        or not r["统一社会信用代码"].isascii()
        or " " in r["统一社会信用代码"]
        or "-" in r["统一社会信用代码"]
        or r["所属区市"] not in DISTRICTS.values()
        or "元" in r["罚款金额(元)"]
        or "," in r["罚款金额(元)"]
        or "〔" not in r["行政处罚决定书文号"]
        or re.search("[０-９]", r["住所"])
    )
    assert 0.015 < messy / len(f.penalty) < 0.05, messy


def test_penalty_content(big):
    pii = 0
    for r in big.penalty:
        facts = r["主要违法事实"]
        assert 40 <= len(facts) <= 200, facts
        assert r["违法行为类型"] and r["处罚依据"].startswith("《") and r["处罚种类"]
        assert r["处罚机关"].endswith("市场监督管理局")
        if r["罚款金额(元)"]:
            assert Decimal(r["罚款金额(元)"].rstrip("元").replace(",", "")) > 0
        kinds = r["处罚种类"].split(";")
        assert ("罚款" in kinds) == bool(r["罚款金额(元)"] or r["罚款金额(万元)"]), r
        assert ("没收违法所得" in kinds) == bool(r["没收违法所得金额(元)"]), r
        ids = re.findall(r"身份证号(\d{17}[\dX]|\d{15})", facts)
        if ids:
            pii += 1
            assert all(len(i) == 15 or resident_id_is_valid(i) for i in ids)
            assert re.search(r"联系电话1[3-9]\d{9}", facts)
        else:
            assert not re.search(r"\d{11,}", facts), facts  # no accidental ID-like numbers
    assert 0.002 < pii / len(big.penalty) < 0.01
    assert Counter(r["处罚种类"] for r in big.penalty)["警告"] > 0
    assert any("吊销许可证件" in r["处罚种类"] for r in big.penalty)
    assert any(r["没收违法所得金额(元)"] for r in big.penalty)


def test_blacklist_issues_and_links(big):
    penalties = {}
    for r in big.penalty:
        number = re.sub(r"[\[【](\d{4})[\]】]", r"〔\1〕", r["行政处罚决定书文号"])
        penalties[number] = r
    issues: dict[tuple[str, str], set] = {}
    linked = 0
    for r in big.blacklist:
        issued, _ = _date(r["发布日期"])
        issue = r["期次"] if "年" in r["期次"] else f"{issued.year}年{r['期次']}"
        assert issue.startswith(f"{issued.year}年第")
        assert r["发布单位"].endswith("市场监督管理局") and r["违法事实"] and r["责任人员"]
        issues.setdefault((r["发布单位"], issue), set()).add(issued)
        if r["行政处罚决定书文号"]:
            linked += 1
            p = penalties[r["行政处罚决定书文号"]]  # links to a generated penalty
            assert _entity_id(p) == _entity_id(r)
            assert _date(p["处罚决定日期"])[0] < issued
            assert p["领域"] == "食品" and r["涉案产品"] in p["主要违法事实"]
    assert all(len(days) == 1 for days in issues.values())  # one date per issue
    assert 0.7 < linked / len(big.blacklist) < 0.97
    sizes = Counter(r["期次"] + r["发布单位"] for r in big.blacklist)
    assert len(big.blacklist) == round(0.00137 * 20_000)
    assert len(sizes) >= len(big.blacklist) // 12


def test_project_cleaner_accepts_every_row(files):
    """Cross-check with the pipeline's own reader and cleaner: sample data is valid input."""
    from publishing import clean, sources
    for kind, name in FILES.items():
        source = sources.open_source(files.out / name)
        assert source.kind == kind
        cleaner = clean.Cleaner(kind, TODAY, name)
        rejects = [r for row in source.rows if isinstance(r := cleaner.clean(row), list)]
        assert not rejects, rejects[:3]
