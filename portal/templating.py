"""The Jinja environment: templates/ and static/ (project root, or inside the package when
installed from a wheel), filters for the public
shape's values (money, lists, districts), and versioned static URLs (long-cached)."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from portal import routes
from publishing.clock import BEIJING
from publishing.contract import DISTRICT_SHORT, DISTRICTS, KIND_COLUMNS, KIND_LABELS, KINDS
from publishing.request_deadlines import calendar_gap
from publishing.requests import repair_moot
from publishing.shape import KIND_FIELDS, entity_url
from publishing.site import AUTHORITY, SITE_NAME


def _site_dir(name: str) -> Path:
    """templates/ or static/: inside the package when installed from a wheel (pyproject maps
    them there), else at the project root of a checkout (DESIGN.md's layout)."""
    here = Path(__file__).resolve().parent
    packaged = here / name
    return packaged if packaged.is_dir() else here.parent / name


TEMPLATES_DIR = _site_dir("templates")
STATIC_DIR = _site_dir("static")

# Labels of the public shape's fields: the contract's Chinese headers, plus the shape's own.
FIELD_LABELS: dict[str, str] = {
    "uscc": "统一社会信用代码",
    "reg_no": "注册号",
    "entity_name": "主体名称",
    "legal_rep": "法定代表人（负责人）",
    "address": "住所（经营场所）",
    "district": "所属区市",
    "date": "日期",
    "publicity_until": "公示截止日期",
    "repairable_from": "可申请信用修复日期",
    "first_published_at": "首次公示时间",
    "updated_at": "最近更新时间",
    # the site's one word for a domain: the penalty file's header says 领域, the marks' 监管领域
    "penalty.domain": "监管领域",
}
FIELD_TYPES: dict[str, dict[str, str]] = {}
for _kind, _cols in KIND_COLUMNS.items():
    FIELD_TYPES[_kind] = {c.key: c.type for c in _cols}
    for _c in _cols:
        FIELD_LABELS.setdefault(f"{_kind}.{_c.key}", _c.label)

STATUS_LABELS = {
    "active": "公示中",
    "withdrawn": "已撤销",
    "expired": "公示期满",
    "superseded": "已被更新",
    "aggregate": "仅统计公开",
}
TYPE_LABELS = {"entity": "市场主体", **KIND_LABELS}
# The site's one wording for a record published without an end date (no 公示截止日期), and for
# a credit mark without an end of validity (no 有效期至): the two mean different things.
OPEN_ENDED_PUBLICITY = "长期公示（至撤销或更新）"
OPEN_ENDED_VALIDITY = "长期有效"

# The back office's audit trail in words (review_request.html); an action or actor not listed
# here is shown as it is stored.
AUDIT_ACTIONS = {
    "request.submit": "提交申请",
    "request.supplement": "补正材料",
    "request.accept": "受理",
    "request.more_info": "要求补正材料",
    "request.approve": "批准",
    "request.reject": "驳回",
    "request.deadlines": "重算办理期限",
    "attachment.view": "查看附件",
}
AUDIT_ACTORS = {
    "applicant": "申请人",
    "applicant:web": "申请人（网上提交）",
    "applicant:api": "申请人（接口提交）",
    "worker": "系统（后台任务）",
    "system": "系统",
}


def dir_version(directory: Path) -> str:
    """A short hash of every file under a directory (template set / static asset version)."""
    h = hashlib.blake2b(digest_size=4)
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@cache
def _asset_hash(name: str) -> str:
    return hashlib.blake2b((STATIC_DIR / name).read_bytes(), digest_size=5).hexdigest()


def static_url(name: str) -> str:
    """/static/NAME?v=HASH: the URL changes when the file does, so it can be cached for a year."""
    return f"/static/{name}?v={_asset_hash(name)}"


def field_label(kind: str, key: str) -> str:
    return FIELD_LABELS.get(f"{kind}.{key}") or FIELD_LABELS.get(key, key)


def money(value: Any) -> str:
    if value in (None, ""):
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount:,.2f} 元"


def field_value(kind: str, key: str, value: Any) -> str:
    """A field of the public shape as text, by its contract column type."""
    if value is None or value == "" or value == []:
        return ""
    kind_type = FIELD_TYPES.get(kind, {}).get(key)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if kind_type == "money":
        text = money(value)
        # the label names the unit already: 罚款金额(元) 95,000.00, not 95,000.00 元
        return text.removesuffix(" 元") if field_label(kind, key).endswith("(元)") else text
    return str(value)


def record_title(rec: dict[str, Any]) -> str:
    """What a record is, in a few words (its link text in lists and timelines)."""
    kind = rec["kind"]
    if kind == "penalty":
        parts = [rec.get("violation_type"), rec.get("decision_no")]
    elif kind == "blacklist":
        parts = [rec.get("issue_no"), rec.get("products") or rec.get("violation")]
    elif kind == "credit_mark":
        # the grade is the scheme's result (信用风险分类 B类), not a part of its own
        grade = f" {rec['grade']}类" if rec.get("grade") else ""
        parts = [f"{rec.get('scheme') or ''}{grade}".strip(), rec.get("domain")]
    elif kind == "return_pledge":
        days = f"{rec['return_days']}天无理由退货" if rec.get("return_days") else None
        parts = [rec.get("category"), days]
    else:
        parts = [KIND_LABELS.get(kind, kind)]
    return " · ".join(str(p) for p in parts if p) or KIND_LABELS.get(kind, kind)


def audit_action(action: str) -> str:
    return AUDIT_ACTIONS.get(action, action)


def audit_actor(actor: str) -> str:
    """A staff member by name; the applicant and the system's own jobs in words."""
    if actor.startswith("review:"):
        return actor.removeprefix("review:")
    return AUDIT_ACTORS.get(actor, actor)


def _beijing(value: Any) -> datetime | date | str | None:
    """A stored instant (a datetime or its ISO text; naive is UTC) as a Beijing datetime; a
    calendar date (a date or YYYY-MM-DD) as it is: a deadline or a decision date is not shifted."""
    if isinstance(value, str) and "T" in value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).astimezone(BEIJING)
    return value or None


def local_date(value: Any) -> str:
    """YYYY-MM-DD of a date, or the Beijing date of an instant."""
    when = _beijing(value)
    return when.date().isoformat() if isinstance(when, datetime) else str(when or "")[:10]


def local_minute(value: Any) -> str:
    """YYYY-MM-DD HH:MM of an instant in Beijing time (a date alone: the date)."""
    when = _beijing(value)
    return when.strftime("%Y-%m-%d %H:%M") if isinstance(when, datetime) else local_date(when)


def time_attr(value: Any) -> str:
    """The datetime attribute of <time>: an instant with its offset (+08:00), a date as it is."""
    when = _beijing(value)
    if isinstance(when, datetime):
        return when.isoformat(timespec="seconds")
    return when.isoformat() if isinstance(when, date) else str(when or "")


_MARK = re.compile(r"(</?mark>)")


def safe_highlight(snippet: str | None) -> Markup:
    """A search snippet with only <mark> kept as markup; everything else escaped."""
    if not snippet:
        return Markup("")
    out = []
    for part in _MARK.split(snippet):
        if part in ("<mark>", "</mark>"):
            out.append(part)
        else:
            out.append(str(escape(html.unescape(part))))
    return Markup("".join(out))


def make_environment() -> Environment:
    if not (TEMPLATES_DIR / "base.html").is_file():  # fail at start, not with a 500 on each page
        raise RuntimeError(f"templates not found in {TEMPLATES_DIR}: is the package installed whole?")
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        highlight=safe_highlight,
        record_title=record_title,
        local_date=local_date,
        local_minute=local_minute,
        time_attr=time_attr,
        district_name=lambda code: DISTRICTS.get(code or "", ""),
        audit_action=audit_action,
        audit_actor=audit_actor,
    )
    env.globals.update(
        static_url=static_url,
        field_label=field_label,
        field_value=field_value,
        SITE_NAME=SITE_NAME,
        AUTHORITY=AUTHORITY,
        KINDS=KINDS,
        KIND_LABELS=KIND_LABELS,
        DISTRICTS=DISTRICTS,
        DISTRICT_SHORT=DISTRICT_SHORT,
        STATUS_LABELS=STATUS_LABELS,
        TYPE_LABELS=TYPE_LABELS,
        KIND_FIELDS=KIND_FIELDS,
        routes=routes,
        entity_url=entity_url,
        repair_moot=repair_moot,
        # the back office's banner: years without holiday data that deadlines reach
        calendar_gap=calendar_gap,
        OPEN_ENDED_PUBLICITY=OPEN_ENDED_PUBLICITY,
        OPEN_ENDED_VALIDITY=OPEN_ENDED_VALIDITY,
    )
    return env
