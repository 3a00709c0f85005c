"""CLI verbs of the back office (added to `disclosure` by portal.cli):

disclosure users add NAME --role reviewer|approver|admin   password from a prompt, or stdin
disclosure users token NAME                                prints a new API token
disclosure users disable NAME                              no login, sessions end, tokens revoked
disclosure users enable NAME                               may log in again (new tokens needed)
disclosure users revoke NAME [--hint H]                    revokes its API tokens (or one)
disclosure audit verify [--anchor FILE]                    exit 0 intact, 1 tampered
disclosure apikeys add NAME [--per-minute N]               prints a new X-API-Key for a partner
disclosure apikeys revoke NAME [--prefix P]                revokes all of NAME's keys (or one)
disclosure apikeys list                                    holders of active keys, key prefixes
disclosure after-restore                                   after a restore: all users disabled,
                                                           today's tracking numbers skip ahead
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from portal.cli_database import database_errors, open_database
from publishing.roles import ROLES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("密码（至少10个字符）：")
        if getpass.getpass("再次输入密码：") != first:
            print("两次输入的密码不一致。", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_users_add(args: argparse.Namespace) -> int:
    from publishing import users

    password = _read_password()
    if password is None:
        return EXIT_FAILED
    try:
        user, created = users.add_user(open_database(), args.name, args.role, password)
    except users.UserError as err:
        print(f"未能添加用户：{err}", file=sys.stderr)
        return EXIT_FAILED
    verb = "已添加" if created else "已重设密码和角色（其已有会话全部失效，API 令牌全部吊销）"
    print(f"{verb}用户 {user.name}（角色 {user.role}）。")
    return EXIT_OK


def cmd_users_token(args: argparse.Namespace) -> int:
    from publishing import users

    try:
        token = users.new_token(open_database(), args.name)
    except users.UserError as err:
        print(f"未能生成令牌：{err}", file=sys.stderr)
        return EXIT_FAILED
    print(token)
    print("令牌只显示这一次；请求头：Authorization: Bearer <令牌>", file=sys.stderr)
    return EXIT_OK


def _hints(hints: list[str]) -> str:
    return "、".join(f"{h}…" for h in hints) if hints else "无"


def cmd_users_disable(args: argparse.Namespace) -> int:
    from publishing import users

    try:
        revoked = users.disable_user(open_database(), args.name)
    except users.UserError as err:
        print(f"未能停用用户：{err}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"已停用用户 {args.name}：不能再登录，其已有会话全部失效；"
        f"吊销 API 令牌 {len(revoked)} 个（{_hints(revoked)}）。"
    )
    return EXIT_OK


def cmd_users_enable(args: argparse.Namespace) -> int:
    from publishing import users

    try:
        users.enable_user(open_database(), args.name)
    except users.UserError as err:
        print(f"未能启用用户：{err}", file=sys.stderr)
        return EXIT_FAILED
    print(f"已启用用户 {args.name}：可用原密码登录；停用时吊销的 API 令牌不恢复，需要时重新生成。")
    return EXIT_OK


def cmd_users_revoke(args: argparse.Namespace) -> int:
    from publishing import users

    try:
        revoked = users.revoke_tokens(open_database(), args.name, args.hint)
    except users.UserError as err:
        print(f"未能吊销令牌：{err}", file=sys.stderr)
        return EXIT_FAILED
    print(f"已吊销用户 {args.name} 的 API 令牌 {len(revoked)} 个（{_hints(revoked)}）。")
    return EXIT_OK


def _anchors(path: Path | None) -> tuple[list | None, str | None]:
    """The anchors to check (None: no file at the default place) and an error to report."""
    from publishing import audit
    from publishing.settings import get_settings

    file = path or get_settings().audit_anchors_path
    if not file.exists():
        return None, f"找不到锚点文件 {file}。" if path else None
    try:
        return audit.read_anchors(file), None
    except (OSError, ValueError) as err:
        return None, f"无法读取锚点文件：{err}"


@database_errors("未核对审计日志")
def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0 intact, 1 tampered, 2 unreadable anchors, 3 no database: a check pointed at a
    mistyped path or data directory must not verify a new, empty log and say all is well."""
    from publishing import audit

    anchors, problem = _anchors(args.anchor)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_USAGE
    engine = open_database(create=False)
    ok, bad = audit.verify(engine)
    if not ok:
        entry = audit.entry(engine, bad) if bad is not None else None
        print(
            f"审计日志被篡改：第 {bad} 条起哈希链不再成立"
            "（若本机的 DISCLOSURE_AUDIT_KEY / DISCLOSURE_SECRET_KEY 与写入时不同，也会如此）。",
            file=sys.stderr,
        )
        if entry:
            print(json.dumps(entry, ensure_ascii=False, default=str, indent=2), file=sys.stderr)
        return EXIT_FAILED
    lost = audit.check_anchors(engine, anchors or [])
    if lost:
        print(
            f"审计日志被篡改：{lost.at} 锚定的第 {lost.n} 条（哈希 {lost.hash[:16]}…）"
            "已不在日志中或已被改动（日志尾部被删除或改写）。",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if anchors:
        print(f"审计日志完整：哈希链校验通过，{len(anchors)} 个锚点（至第 {anchors[-1].n} 条）均相符。")
    else:
        print("审计日志完整：哈希链校验通过（没有锚点文件，未核对日志尾部是否被删除）。")
    return EXIT_OK


def cmd_apikeys_add(args: argparse.Namespace) -> int:
    from publishing import apikeys

    if not args.name.strip():
        print("持有者名称不能为空。", file=sys.stderr)
        return EXIT_USAGE
    key = apikeys.create_key(open_database(), args.name.strip(), args.per_minute)
    print(key)
    limit = f"每分钟 {args.per_minute} 次" if args.per_minute else "API 密钥的默认限额"
    print(f"密钥只显示这一次；请求头：X-API-Key: <密钥>；限额：{limit}。", file=sys.stderr)
    return EXIT_OK


def cmd_apikeys_revoke(args: argparse.Namespace) -> int:
    from publishing import apikeys

    if args.prefix is not None:
        try:
            hint = apikeys.revoke_one(open_database(), args.name, args.prefix)
        except apikeys.ApiKeyError as err:
            print(f"未能吊销密钥：{err}。", file=sys.stderr)
            return EXIT_FAILED if isinstance(err, apikeys.NoSuchKey) else EXIT_USAGE
        print(f"已吊销 {args.name} 的 API 密钥 {hint}…；其其他密钥不受影响。")
        return EXIT_OK
    count = apikeys.revoke(open_database(), args.name)
    if not count:
        print(f"{args.name} 没有有效的 API 密钥。", file=sys.stderr)
        return EXIT_FAILED
    print(f"已吊销 {args.name} 的 API 密钥 {count} 个。")
    return EXIT_OK


def cmd_apikeys_list(args: argparse.Namespace) -> int:
    from publishing import apikeys, clock

    for h in apikeys.holders(open_database()):
        limits = "、".join(str(p) if p else "默认" for p in h["per_minute"])
        hints = "、".join(f"{k}…" if k else "（早期密钥，未记前缀）" for k in h["hints"])
        print(
            f"{h['name']}\t{h['keys']} 个\t每分钟限额 {limits}\t最近生成 {clock.beijing_date(h['created_at']):%Y-%m-%d}"
            f"\t密钥 {hints}"
        )
    return EXIT_OK


@database_errors("未做恢复后处置")
def cmd_after_restore(args: argparse.Namespace) -> int:
    """Exit 0 done, 1 the counter could not move (the accounts are disabled all the same),
    3 no database: a mistyped URL must not make a new, empty database and report success."""
    from publishing import after_restore

    report = after_restore.run(open_database(create=False))
    for line in after_restore.summary(report):
        print(line)
    return EXIT_OK if report.counter else EXIT_FAILED


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("须为正整数")
    return value


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="审核后台用户与 API 令牌")
    users_sub = p.add_subparsers(dest="users_command", required=True)
    q = users_sub.add_parser("add", help="添加用户（或重设已有用户的密码和角色）")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--role", choices=ROLES, required=True)
    q.set_defaults(func=cmd_users_add)
    q = users_sub.add_parser("token", help="为用户生成新的 API 令牌")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_users_token)
    q = users_sub.add_parser("disable", help="停用用户：不能登录，会话失效，令牌吊销")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_users_disable)
    q = users_sub.add_parser("enable", help="重新启用已停用的用户")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_users_enable)
    q = users_sub.add_parser("revoke", help="吊销用户的 API 令牌（全部，或 --hint 指定的一个）")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--hint", help="令牌的开头（至少 7 个字符，生成时显示前 10 个）：吊销以此开头的令牌")
    q.set_defaults(func=cmd_users_revoke)

    p = sub.add_parser("apikeys", help="开放数据接口的 API 密钥（合作单位的更高限额）")
    keys_sub = p.add_subparsers(dest="apikeys_command", required=True)
    q = keys_sub.add_parser("add", help="为合作单位生成 API 密钥（只显示一次）")
    q.add_argument("name", metavar="NAME", help="持有者（单位名称）")
    q.add_argument("--per-minute", type=_positive, help="每分钟请求数限额（默认：API 密钥的默认限额）")
    q.set_defaults(func=cmd_apikeys_add)
    q = keys_sub.add_parser("revoke", help="吊销持有者的 API 密钥（全部，或 --prefix 指定的一个）")
    q.add_argument("name", metavar="NAME")
    q.add_argument(
        "--prefix",
        help="密钥的开头（至少 7 个字符，apikeys list 显示前 10 个；或整个密钥）：只吊销这一个",
    )
    q.set_defaults(func=cmd_apikeys_revoke)
    q = keys_sub.add_parser("list", help="列出持有有效密钥的单位")
    q.set_defaults(func=cmd_apikeys_list)

    p = sub.add_parser(
        "after-restore",
        help="恢复数据库后运行：停用全部后台账户并吊销令牌，今日受理编号跳号，列出 API 密钥待核对",
    )
    p.set_defaults(func=cmd_after_restore)

    p = sub.add_parser("audit", help="审计日志")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    q = audit_sub.add_parser("verify", help="校验审计日志的哈希链（及 worker 记下的锚点）")
    q.add_argument(
        "--anchor",
        type=Path,
        help="锚点文件（默认 DISCLOSURE_AUDIT_ANCHOR_FILE，或数据目录下的 audit-anchors.jsonl）",
    )
    q.set_defaults(func=cmd_audit_verify)
