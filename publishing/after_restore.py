"""What a restored database must not bring back (`disclosure after-restore`, which
deploy/restore.sh runs right after pg_restore and the migrations).

A backup knows nothing of what happened after it was taken, and the restore brings that back:

- back-office access revoked after the backup (a departed reviewer's account, a leaked token)
  works again, and the audit entries of the revocation are gone. So every account is disabled,
  every session ends and every API token is revoked (users.disable_user, one account at a
  time); the operator enables again, by name, the accounts still valid (new tokens needed).
- tracking numbers issued after the backup would be issued again: today's counter (Beijing
  date, as requests.submit draws it) moves COUNTER_GAP numbers on. Earlier days' counters are
  never drawn from again.
- partner API keys revoked after the backup work again. They are not revoked here (partners'
  integrations would break, and a key gives only a higher rate limit on public data): they are
  listed so that the operator re-applies those revocations.

Running it again is harmless: the accounts are disabled again and the counter moves on again.
Each action is in the audit log with actor ACTOR.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from publishing import apikeys, audit, clock, users
from publishing.db import writer_connection
from publishing.request_codes import CounterFull, skip_numbers, tracking_number
from publishing.request_models import USERS

ACTOR = "after-restore"
# Numbers skipped past today's restored counter. Between the backup and the loss at most a
# day's submissions were numbered today, and the bureau gets a few hundred a day at most: 10,000
# leaves a wide margin and still fits the 6-digit number (request_codes.TRACKING_DIGITS) for
# some 98 runs in one day (skip_numbers refuses a run that would leave too few).
COUNTER_GAP = 10_000


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    was_active: bool  # in the restored backup: a disabled one was most likely meant to stay so
    tokens_revoked: list[str]  # hints


@dataclass(frozen=True)
class CounterSkip:
    day: date
    before: int  # 0: the backup had no number of that day
    after: int


@dataclass(frozen=True)
class Report:
    accounts: list[Account]
    counter: CounterSkip | None  # None: the counter could not move (counter_error says why)
    counter_error: str | None
    key_holders: list[dict[str, Any]]  # apikeys.holders


def disable_accounts(engine: Engine) -> list[Account]:
    """Disable every back-office account, ending its sessions and revoking its tokens."""
    with engine.connect() as conn:
        rows = conn.execute(select(USERS.c.name, USERS.c.role, USERS.c.active).order_by(USERS.c.name))
        listed = rows.all()
    return [
        Account(r.name, r.role, bool(r.active), users.disable_user(engine, r.name, actor=ACTOR))
        for r in listed
    ]


def skip_todays_numbers(engine: Engine, now: datetime | None = None) -> CounterSkip:
    """Move today's tracking-number counter COUNTER_GAP on (CounterFull: it stays)."""
    day = clock.beijing_date(now or clock.now())
    with writer_connection(engine) as conn, conn.begin():
        before, after = skip_numbers(conn, day, COUNTER_GAP)
        audit.append(
            conn,
            actor=ACTOR,
            action="request_counter.skip",
            target_type="request_counter",
            target_id=day.strftime("%Y%m%d"),
            before={"n": before},
            after={"n": after, "gap": COUNTER_GAP},
        )
    return CounterSkip(day, before, after)


def run(engine: Engine, now: datetime | None = None) -> Report:
    """Accounts first: they matter most, and a full counter must not leave them enabled."""
    accounts = disable_accounts(engine)
    try:
        counter, error = skip_todays_numbers(engine, now), None
    except CounterFull as err:
        counter, error = None, str(err)
    return Report(accounts, counter, error, apikeys.holders(engine))


def _account_lines(accounts: list[Account]) -> list[str]:
    if not accounts:
        return ["后台账户：没有。"]
    revoked = sum(len(a.tokens_revoked) for a in accounts)
    lines = [
        f"后台账户：{len(accounts)} 个已全部停用，会话全部失效，API 令牌全部吊销（{revoked} 个）。",
        "请逐一核实，只重新启用仍应有权限的账户（启用后须用 users token 重新生成令牌）：",
    ]
    for a in accounts:
        state = "备份中有效" if a.was_active else "备份中已停用，通常不应启用"
        lines.append(f"  {a.name}\t{a.role}\t{state}\tdisclosure users enable {_quoted(a.name)}")
    return lines


def _quoted(name: str) -> str:
    """The name as a shell word (a name has no spaces, but may hold $, ; or quotes)."""
    return shlex.quote(name)


def _counter_lines(report: Report) -> list[str]:
    skip = report.counter
    if skip is None:
        return [f"受理编号：计数器未能推进（{report.counter_error}），恢复前发出的编号可能重复。"]
    return [
        f"受理编号：今日（{skip.day:%Y-%m-%d}）计数器由 {skip.before} 推进到 {skip.after}"
        f"（跳过 {COUNTER_GAP} 个），下一个编号为 {tracking_number(skip.day, skip.after + 1)}。"
    ]


def _key_lines(holders: list[dict[str, Any]]) -> list[str]:
    if not holders:
        return ["开放数据 API 密钥：没有有效的密钥。"]
    lines = [
        "开放数据 API 密钥（未吊销，以免合作单位的对接中断）：备份之后吊销的密钥已随恢复重新生效，"
        "请按记录重新吊销（disclosure apikeys revoke NAME --prefix 前缀）：",
    ]
    for h in holders:
        hints = "、".join(f"{k}…" if k else "（早期密钥，未记前缀）" for k in h["hints"])
        lines.append(f"  {h['name']}\t{h['keys']} 个\t密钥 {hints}")
    return lines


def summary(report: Report) -> list[str]:
    """What was done and what the operator must do, in Chinese, line by line."""
    counter = "已跳过" if report.counter else "未能推进"
    return [
        *_account_lines(report.accounts),
        *_counter_lines(report),
        *_key_lines(report.key_holders),
        f"小结：停用后台账户 {len(report.accounts)} 个；今日受理编号{counter}；"
        f"API 密钥持有单位 {len(report.key_holders)} 个待核对。",
    ]
