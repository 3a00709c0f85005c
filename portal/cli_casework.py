"""CLI verbs of the back office (added to `disclosure` by portal.cli):

disclosure users add NAME --role reviewer|approver|admin   password from a prompt, or stdin
disclosure users token NAME                                prints a new API token
disclosure audit verify                                    exit 0 intact, 1 tampered
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from publishing.roles import ROLES

EXIT_OK, EXIT_FAILED = 0, 1


def _engine():
    from publishing.db import get_engine, upgrade

    engine = get_engine()
    upgrade(engine)
    return engine


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("密码(至少10个字符): ")
        if getpass.getpass("再次输入密码: ") != first:
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
        user, created = users.add_user(_engine(), args.name, args.role, password)
    except users.UserError as err:
        print(f"未能添加用户:{err}", file=sys.stderr)
        return EXIT_FAILED
    verb = "已添加" if created else "已重设密码和角色(其已有会话全部失效)"
    print(f"{verb}用户 {user.name}(角色 {user.role})。")
    return EXIT_OK


def cmd_users_token(args: argparse.Namespace) -> int:
    from publishing import users

    try:
        token = users.new_token(_engine(), args.name)
    except users.UserError as err:
        print(f"未能生成令牌:{err}", file=sys.stderr)
        return EXIT_FAILED
    print(token)
    print("令牌只显示这一次;请求头:Authorization: Bearer <令牌>", file=sys.stderr)
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from publishing import audit

    engine = _engine()
    ok, bad = audit.verify(engine)
    if ok:
        print("审计日志完整:哈希链校验通过。")
        return EXIT_OK
    entry = audit.entry(engine, bad) if bad is not None else None
    print(f"审计日志被篡改:第 {bad} 条起哈希链不再成立。", file=sys.stderr)
    if entry:
        print(json.dumps(entry, ensure_ascii=False, default=str, indent=2), file=sys.stderr)
    return EXIT_FAILED


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="审核后台用户与 API 令牌")
    users_sub = p.add_subparsers(dest="users_command", required=True)
    q = users_sub.add_parser("add", help="添加用户(或重设已有用户的密码和角色)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--role", choices=ROLES, required=True)
    q.set_defaults(func=cmd_users_add)
    q = users_sub.add_parser("token", help="为用户生成新的 API 令牌")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_users_token)

    p = sub.add_parser("audit", help="审计日志")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    q = audit_sub.add_parser("verify", help="校验审计日志的哈希链")
    q.set_defaults(func=cmd_audit_verify)
