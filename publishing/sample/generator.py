"""The sample generator proper: `generate` plans the blacklist, then writes the four files in
their real-world formats and encodings (GB18030 CSV, UTF-8-with-BOM CSV, NDJSON, XLSX with
deterministic zip members), drawing records from random.Random sub-streams of the seed.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

from publishing import clock
from publishing.contract import DISTRICTS
from publishing.sample.cases import (
    _BLACKLIST_PRODUCTS,
    _SAMPLERS,
    _SEVERITY,
    _TEMPLATE_TABLES,
    Product,
    _facts,
    _t_sampling,
)
from publishing.sample.codes import _mobile, _resident_id
from publishing.sample.entities import Entity, _Entities, _u16
from publishing.sample.formats import (
    _FULLWIDTH,
    _cn_date,
    _date_text,
    _iso,
    _messy_code,
    _messy_district,
    _workday,
    _yuan,
)
from publishing.sample.vocab import _DISTRICT_TABLE, _GIVEN, _SURNAMES, CITY, FOOD_GROUPS, _table

FILES = {
    "blacklist": "blacklist.xlsx",
    "penalty": "penalty.csv",
    "credit_mark": "credit_mark.csv",
    "return_pledge": "return_pledge.ndjson",
}
PROGRESS_EVERY = 50_000
MESSY = 0.035  # share of rows with one messy-but-valid value
PII = 0.005  # share of penalty facts that mention an ID and a mobile number
PENALTIES_PER_ENTITY = 0.6
BLACKLIST_PER_ENTITY = 0.00137
BLACKLIST_MIN = 20


class _BlIssue:
    __slots__ = ("publisher", "district", "issued_on", "issue_no", "entries", "used")

    def __init__(self, publisher: str, district: str | None, issued_on: date) -> None:
        self.publisher, self.district, self.issued_on = publisher, district, issued_on
        self.issue_no = ""
        self.entries: list[_BlEntry] = []
        self.used: set[tuple[int, str]] = set()  # (entity index, product)


class _BlEntry:
    __slots__ = ("issue", "entity", "product", "decision_no", "action", "violation", "persons")

    def __init__(self, issue: _BlIssue, product: Product) -> None:
        self.issue, self.product = issue, product
        self.entity: Entity | None = None
        self.decision_no = ""
        self.action = ""
        self.violation = ""
        self.persons = ""


class _Generator:
    def __init__(self, out: Path, entities: int, seed: int, today: date,
                 progress: Callable[[str, int], None] | None) -> None:  # fmt: skip
        self.out, self.n, self.seed, self.today, self.progress = (
            out,
            entities,
            seed,
            today,
            progress,
        )
        self.entity = _Entities(seed, entities)
        self.start = today - timedelta(days=1094)  # the last three years
        self.span = (today - self.start).days
        self.penalties = round(PENALTIES_PER_ENTITY * entities)
        self.forced: dict[int, _BlEntry] = {}
        self.issues: list[_BlIssue] = []

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.seed}:{stream}")

    def _tick(self, kind: str, rows: int) -> None:
        if self.progress is not None and rows % PROGRESS_EVERY == 0:
            self.progress(kind, rows)

    def _done(self, kind: str, rows: int) -> None:
        if self.progress is not None and (rows == 0 or rows % PROGRESS_EVERY):
            self.progress(kind, rows)

    # -- entity choice ----------------------------------------------------------------------
    def _blacklist_entity(self, r: random.Random, entry: _BlEntry) -> Entity:
        """A food business of the issue's district (any district for the city's issues).

        (entity, product) stays unique within the issue, so the natural key publisher + issue +
        entity + products is never repeated, even with fewer entities than entries."""
        issue, used = entry.issue, entry.issue.used
        e = fallback = None
        for _ in range(5000):
            candidate = self.entity(r.randrange(self.n))
            if (candidate.i, entry.product[0]) in used:
                continue
            fallback = fallback or candidate
            if candidate.group in FOOD_GROUPS and issue.district in (None, candidate.district.code):
                e = candidate
                break
        e = e or fallback
        if e is None:  # every entity already listed with this product: another product
            e = self.entity(r.randrange(self.n))
            entry.product = next(p for p in _BLACKLIST_PRODUCTS if (e.i, p[0]) not in used)
        used.add((e.i, entry.product[0]))
        return e

    # -- dates ------------------------------------------------------------------------------
    def decided_on(self, j: int) -> date:
        """Penalty j's decision date: chronological over the last three years, working days."""
        offset = j * self.span // max(1, self.penalties)
        return _workday(self.start + timedelta(days=offset), self.today)

    # -- blacklist plan ---------------------------------------------------------------------
    def plan_blacklist(self) -> None:
        """Issues and entries; most entries are tied to a penalty row generated later."""
        r = self.rng("blacklist-plan")
        total = max(BLACKLIST_MIN, round(BLACKLIST_PER_ENTITY * self.n))
        sizes: list[int] = []
        left = total
        while left > 12:
            s = r.randint(5, 12)
            if 0 < left - s < 5:
                s = left - 5
            sizes.append(s)
            left -= s
        sizes.append(left)
        first = self.start + timedelta(days=45)
        gap = (self.today - first).days / len(sizes)
        numbers: dict[tuple[str, int], int] = {}
        for k, size in enumerate(sizes):
            day = first + timedelta(days=int(gap * k + r.random() * gap * 0.8))
            day = _workday(min(day, self.today), self.today)
            if r.random() < 0.55:
                issue = _BlIssue(CITY.authority, None, day)
            else:
                dist = _DISTRICT_TABLE[r.randrange(4096)]
                issue = _BlIssue(dist.authority, dist.code if dist is not CITY else None, day)
            key = (issue.publisher, day.year)
            numbers[key] = numbers.get(key, r.randint(0, 2)) + 1
            issue.issue_no = f"{day.year}年第{numbers[key]}期"
            self.issues.append(issue)
            for _ in range(size):
                entry = _BlEntry(issue, r.choice(_BLACKLIST_PRODUCTS))
                issue.entries.append(entry)
                j = self._penalty_slot(r, day) if r.random() < 0.85 else None
                if j is not None:
                    self.forced[j] = entry
                else:
                    self._unlinked(r, entry)

    def _penalty_slot(self, r: random.Random, issued_on: date) -> int | None:
        """An unused penalty row decided 10–60 days before issued_on, or None."""
        if self.penalties == 0:
            return None
        target = issued_on - timedelta(days=r.randint(10, 60))
        if target < self.start:
            return None
        j = min(self.penalties - 1, (target - self.start).days * self.penalties // self.span)
        for probe in range(j, max(-1, j - 200), -1):
            if probe not in self.forced and self.decided_on(probe) < issued_on:
                return probe
        return None

    def _unlinked(self, r: random.Random, entry: _BlEntry) -> None:
        e = self._blacklist_entity(r, entry)
        entry.entity = e
        name, item = entry.product[0], entry.product[1]
        entry.violation = f"经营的{name}经抽样检验，{item}项目不符合食品安全标准"
        entry.action = r.choice(("已立案调查", "责令停止销售，已立案调查",
                                 "下架封存不合格产品，已立案调查"))  # fmt: skip
        entry.persons = self._persons(r, e)

    def _persons(self, r: random.Random, e: Entity) -> str:
        names = [e.rep]
        if e.kind != "ind" and r.random() < 0.4:
            d = e.d
            other = _SURNAMES[d[50] % len(_SURNAMES)] + _GIVEN[d[51] % len(_GIVEN)]
            if other != e.rep:
                names.append(other)
        sep = "、" if r.random() < 0.9 else r.choice(("，", ",", ";", "；"))
        return sep.join(names)

    # -- credit marks and return pledges (one pass over the entities) -------------------------
    def write_marks_and_pledges(self) -> tuple[Path, Path]:
        r = self.rng("marks")
        rp = self.rng("pledges")
        today = self.today
        quarters = []
        q = date(today.year, 12, 31)
        while len(quarters) < 4:
            if q <= today - timedelta(days=10):
                quarters.append(q)
            q = date(q.year, q.month - 2, 1) - timedelta(days=1)
        q_table = _table(
            [(quarters[0], 70), (quarters[1], 20), (quarters[2], 7), (quarters[3], 3)], 100
        )
        year_end = date(today.year - 1, 12, 31)
        grade_g = _table([("A", 30), ("B", 55), ("C", 10), ("D", 4), ("E", 1)], 1000)
        grade_d = _table([("A", 35), ("B", 50), ("C", 12), ("D", 3)], 100)
        abnormal_co = ("未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告",
                       "通过登记的住所或者经营场所无法联系",
                       "公示企业信息隐瞒真实情况、弄虚作假",
                       "未在市场监督管理部门依照《企业信息公示暂行条例》第十条规定责令的期限内公示有关企业信息")  # fmt: skip
        abnormal_ind = ("未按规定报送年度报告", "通过登记的经营场所无法联系")
        serious_by_group = {
            "food": "因食品安全领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "special_eq": "因特种设备安全领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "drug": "因药品领域违法行为受到较重行政处罚，列入严重违法失信名单",
            "retail": "因销售不合格产品受到较重行政处罚，列入严重违法失信名单",
        }
        serious_other = ("因提交虚假材料取得市场主体登记被撤销登记，列入严重违法失信名单",
                         "被列入经营异常名录届满3年仍未履行相关义务，列入严重违法失信名单")  # fmt: skip
        notes = ("", "", "", "", "年度分类", "按季度动态调整", "系统自动分类", "")
        cm_path = self.out / FILES["credit_mark"]
        rp_path = self.out / FILES["return_pledge"]
        marks = pledges = 0
        with cm_path.open("w", encoding="utf-8-sig", newline="") as cf, \
                rp_path.open("w", encoding="utf-8", newline="\n") as pf:  # fmt: skip
            w = csv.writer(cf, lineterminator="\n")
            w.writerow(["统一社会信用代码", "注册号", "企业名称", "法定代表人", "所属区市", "住所",
                        "标注类型", "分类结果", "监管领域", "认定日期", "有效期至", "列入原因",
                        "备注"])  # fmt: skip
            for i in range(self.n):
                e = self.entity(i)
                d = e.d
                ent = e.row()
                rows = [["信用风险分类", grade_g[_u16(d, 52) % 1000], "通用",
                         q_table[d[54] % 100], None, "", notes[d[55] % 8]]]  # fmt: skip
                if e.food_mark:
                    rows.append(["信用风险分类", grade_d[d[56] % 100], "食品生产", year_end, None,
                                 "", "食品生产企业风险分级"])  # fmt: skip
                if e.se_mark:
                    rows.append(["信用风险分类", grade_d[d[57] % 100], "特种设备",
                                 quarters[d[57] % 2], None, "", ""])  # fmt: skip
                if e.abnormal:
                    reasons = abnormal_ind if e.kind == "ind" else abnormal_co
                    marked = today - timedelta(days=10 + _u16(d, 58) % 1400)
                    rows.append(["经营异常名录", "", "", _workday(marked, today), None,
                                 reasons[d[60] % len(reasons)], ""])  # fmt: skip
                if e.serious:
                    group = "food" if e.group in FOOD_GROUPS else e.group
                    reason = serious_by_group.get(group) if d[63] < 200 else None
                    reason = reason or serious_other[d[63] % 2]
                    marked = _workday(today - timedelta(days=20 + _u16(d, 61) % 1000), today)
                    until = date(marked.year + 3, marked.month, 1) + timedelta(days=marked.day - 2)
                    rows.append(["严重违法失信名单", "", "", marked, until, reason, ""])
                for row in rows:
                    out = list(ent)
                    marked_text = _iso(row[3])
                    if r.random() < MESSY:
                        style = r.randrange(4)
                        if style == 0:
                            marked_text = _date_text(row[3], r.randrange(4))
                        elif style == 1 and e.uscc:
                            out[0] = _messy_code(e.uscc, r.randrange(5))
                        elif style == 2:
                            out[4] = _messy_district(e.district.code, r.randrange(4))
                        else:
                            out[5] = out[5].translate(_FULLWIDTH)
                    out += [row[0], row[1], row[2], marked_text,
                            _iso(row[4]) if row[4] else "", row[5], row[6]]  # fmt: skip
                    w.writerow(out)
                    marks += 1
                    self._tick("credit_mark", marks)
                if e.pledge:
                    pf.write(self._pledge(rp, e))
                    pledges += 1
                    self._tick("return_pledge", pledges)
            if pledges == 0:  # tiny samples: one pledge all the same (an empty file is unusable)
                shops = (self.entity(i) for i in range(min(self.n, 1000)))
                e = next((x for x in shops if x.group in ("retail", "food_retail")), self.entity(0))
                pf.write(self._pledge(rp, e))
                pledges = 1
        self._done("credit_mark", marks)
        self._done("return_pledge", pledges)
        return cm_path, rp_path

    def _pledge(self, r: random.Random, e: Entity) -> str:
        cat = e.category or "商场"
        pledged = _workday(self.today - timedelta(days=r.randint(5, 1090)), self.today)
        excl = {
            "超市": "生鲜食品、散装食品、拆封的预包装食品、药品、烟草制品",
            "珠宝": "定制类珠宝首饰、已刻字商品、黄金投资类产品",
            "服装": "贴身内衣、泳装、已修改尺寸的服装",
            "家电": "已安装使用的家电、定制商品",
            "化妆品": "已拆封的化妆品、试用装",
            "眼镜": "已验配加工的眼镜片",
        }.get(cat, "定制商品、鲜活易腐商品、已拆封的个人卫生用品")
        obj: dict[str, object] = {}
        if e.uscc:
            obj["uscc"] = e.uscc
        else:
            obj["reg_no"] = e.reg_no
        obj.update({
            "entity_name": e.name,
            "legal_rep": e.rep,
            "district": DISTRICTS[e.district.code],
            "address": e.address,
            "category": cat,
            "return_days": r.choice((7, 7, 7, 7, 7, 15, 15, 15, 30, 30)),
            "refund_days": r.choice((0, 1, 1, 3, 3, 3, 3, 7, 7, 7)),
            "conditions": r.choice((
                "商品完好，不影响二次销售，凭购物凭证办理",
                "商品及包装、吊牌完好，附件、赠品齐全",
                "凭购物小票或发票，商品未使用、未损坏",
            )),
            "exclusions": excl,
            "pledged_on": _iso(pledged),
            "model_unit": "是" if r.random() < 0.08 else "否",
            "status": "有效",
        })  # fmt: skip
        if r.random() < MESSY:
            style = r.randrange(3)
            if style == 0:
                obj["pledged_on"] = _date_text(pledged, r.randrange(4))
            elif style == 1 and e.uscc:
                obj["uscc"] = _messy_code(e.uscc, r.randrange(5))
            else:
                obj["district"] = _messy_district(e.district.code, r.randrange(4))
        return json.dumps(obj, ensure_ascii=False) + "\n"

    # -- penalties --------------------------------------------------------------------------
    def write_penalties(self) -> Path:
        r = self.rng("penalties")
        path = self.out / FILES["penalty"]
        seqs: dict[tuple[str, int], int] = {}
        n = self.n
        entity = self.entity
        with path.open("w", encoding="gb18030", newline="") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(["行政处罚决定书文号", "当事人名称", "统一社会信用代码", "注册号", "法定代表人",
                        "所属区市", "住所", "程序类型", "违法行为类型", "主要违法事实", "处罚依据",
                        "处罚种类", "罚款金额(元)", "罚款金额(万元)", "没收违法所得金额(元)",
                        "处罚机关", "处罚决定日期", "失信程度", "领域", "联系电话"])  # fmt: skip
            for j in range(self.penalties):
                decided = self.decided_on(j)
                entry = self.forced.get(j)
                if entry is not None:
                    e = self._blacklist_entity(r, entry)
                    sev = "严重" if r.random() < 0.3 else "一般"
                else:
                    while True:
                        e = entity(r.randrange(n))
                        g = e.group
                        if g == "public" and r.random() < 0.9:
                            continue
                        if g == "other" and r.random() < 0.35:
                            continue
                        break
                    sev = _SEVERITY[r.randrange(100)]
                dist = e.district
                authority = dist if entry is not None or r.random() > 0.03 else CITY
                found = _cn_date(decided - timedelta(days=r.randint(20, 150)))
                org = authority.authority if r.random() < 0.7 else r.choice(_SAMPLERS)
                if entry is not None:
                    case = _t_sampling(r, e, sev, found, org, entry.product)
                else:
                    case = _TEMPLATE_TABLES[e.group][r.randrange(1000)](r, e, sev, found, org)
                pii = None
                if r.random() < PII:
                    who = (
                        e.rep
                        if e.kind == "ind"
                        else _SURNAMES[r.randrange(len(_SURNAMES))] + r.choice(_GIVEN)
                    )
                    role = "系该店经营者" if e.kind == "ind" else "系当事人现场负责人"
                    pid = _resident_id(r)
                    if r.random() < 0.1:  # an old 15-digit ID number
                        pid = pid[:6] + pid[8:17]
                    pii = (f"{who}(身份证号{pid}){role}。", f"联系电话{_mobile(r)}。")
                facts = _facts(case.facts, pii)
                key = (authority.dprefix, decided.year)
                seq = seqs.get(key, r.randint(0, 30)) + r.choice((1, 1, 1, 2, 3))
                seqs[key] = seq
                number = f"{authority.dprefix}市监罚〔{decided.year}〕{seq}号"
                decision_text = number
                fine_yuan = "" if case.fine is None else str(case.fine)
                fine_wan = ""
                gain = "" if case.gain is None else _yuan(case.gain)
                decided_text = _iso(decided)
                out = e.row()
                if case.fine and case.fine % 100 == 0 and r.random() < 0.01:
                    fine_yuan, fine_wan = "", f"{case.fine / 10000:.4f}".rstrip("0").rstrip(".")
                if r.random() < MESSY:
                    style = r.randrange(6)
                    if style == 0:
                        decided_text = _date_text(decided, r.randrange(4))
                    elif style == 1 and e.uscc:
                        out[0] = _messy_code(e.uscc, r.randrange(5))
                    elif style == 2:
                        out[4] = _messy_district(dist.code, r.randrange(4))
                    elif style == 3 and fine_yuan:
                        fine_yuan = f"{case.fine:,}元" if r.random() < 0.6 else f"{case.fine:,}.00"
                    elif style == 4:
                        year = decided.year
                        brackets = ("[", "]") if r.random() < 0.5 else ("【", "】")
                        decision_text = number.replace(
                            f"〔{year}〕", f"{brackets[0]}{year}{brackets[1]}"
                        )
                    else:
                        out[5] = out[5].translate(_FULLWIDTH)
                procedure = "普通" if r.random() < 0.97 else "一般"
                w.writerow([decision_text, *out[2:3], *out[0:2], *out[3:6], procedure, case.vtype,
                            facts, case.basis, case.kinds, fine_yuan, fine_wan, gain,
                            authority.authority, decided_text, sev, case.domain, e.phone])  # fmt: skip
                if entry is not None:
                    entry.entity = e
                    entry.decision_no = number
                    entry.violation = case.summary
                    parts = []
                    if gain:
                        parts.append(f"没收违法所得{gain}元")
                    if case.fine:
                        parts.append(f"罚款{case.fine}元")
                    if "吊销许可证件" in case.kinds:
                        parts.append("吊销食品经营许可证")
                    entry.action = "，".join(parts) or "没收违法所得"
                    entry.persons = self._persons(r, e)
                self._tick("penalty", j + 1)
        self._done("penalty", self.penalties)
        return path

    # -- blacklist --------------------------------------------------------------------------
    def write_blacklist(self) -> Path:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment, Font

        r = self.rng("blacklist")
        wb = Workbook(write_only=True)
        stamp = datetime(self.today.year, self.today.month, self.today.day, 9, 0, 0)
        wb.properties.created = wb.properties.modified = stamp
        wb.properties.creator = "烟台市市场监督管理局"
        ws = wb.create_sheet("黑榜汇总")
        headers = ["序号", "期次", "发布单位", "发布日期", "生产经营者名称", "统一社会信用代码", "注册号",
                   "法定代表人", "所属区市", "经营场所", "责任人员", "涉案产品", "违法事实", "处理结果",
                   "行政处罚决定书文号"]  # fmt: skip
        widths = (6, 14, 30, 12, 36, 22, 18, 10, 14, 36, 14, 12, 50, 36, 28)
        for k, width in enumerate(widths):
            ws.column_dimensions[chr(65 + k)].width = width
        ws.merged_cells.add(f"A1:{chr(64 + len(headers))}1")
        title = WriteOnlyCell(ws, value='烟台市食品安全"黑榜"汇总')
        title.font = Font(bold=True, size=16)
        title.alignment = Alignment(horizontal="center")
        ws.append([title])
        ws.append(headers)
        rows = 0
        for issue in self.issues:
            for entry in issue.entries:
                e = entry.entity
                if e is None:  # a planned penalty row that was never written (cannot happen)
                    continue
                rows += 1
                issued: object = issue.issued_on
                issue_no = issue.issue_no
                uscc = e.uscc or ""
                district = DISTRICTS[e.district.code]
                if r.random() < MESSY * 2:  # a small file: a few more, so every kind shows up
                    style = r.randrange(4)
                    if style == 0:
                        issued = _date_text(issue.issued_on, r.randrange(4))
                    elif style == 1:
                        issue_no = issue_no.split("年", 1)[1]  # 第9期: the year from 发布日期
                    elif style == 2 and uscc:
                        uscc = _messy_code(uscc, r.randrange(5))
                    else:
                        district = _messy_district(e.district.code, r.randrange(4))
                ws.append([rows, issue_no, issue.publisher, issued, e.name, uscc, e.reg_no or None,
                           e.rep, district, e.address, entry.persons, entry.product[0],
                           entry.violation, entry.action, entry.decision_no or None])  # fmt: skip
                self._tick("blacklist", rows)
        ws.append(["合计", f"共{rows}条"])
        buf = io.BytesIO()
        wb.save(buf)
        path = self.out / FILES["blacklist"]
        path.write_bytes(_deterministic_zip(buf.getvalue(), stamp))
        self._done("blacklist", rows)
        return path


def _deterministic_zip(data: bytes, stamp: datetime) -> bytes:
    """The XLSX with fixed member timestamps and document dates: same seed, same bytes."""
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:  # fmt: skip
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + iso, body)
            member = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            zout.writestr(member, body)
    return out.getvalue()


def generate(
    out: Path,
    entities: int,
    seed: int = 20261127,
    today: date | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Path]:
    """Write sample files of all four kinds for `entities` entities into `out`.

    Returns kind → path. Deterministic for (entities, seed, today); `today` defaults to
    today in Beijing (publishing.clock) and bounds every event date. progress(kind, rows_written) is called every
    50,000 rows of a kind and once at its end.
    """
    if entities < 1:
        raise ValueError("entities must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = _Generator(out, entities, seed, today or clock.today(), progress)
    gen.plan_blacklist()
    credit_mark, return_pledge = gen.write_marks_and_pledges()
    penalty = gen.write_penalties()
    blacklist = gen.write_blacklist()
    return {
        "blacklist": blacklist,
        "penalty": penalty,
        "credit_mark": credit_mark,
        "return_pledge": return_pledge,
    }
