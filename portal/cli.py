"""The `disclosure` command line. Publishing verbs are thin calls into `publishing`.

Exit codes of `disclosure publish`:
  0  published (with --accept-partial: the valid rows were published; the report lists rejects)
  1  rows were rejected: nothing was published
  2  usage error, a report path that cannot be written, or a file that could not be read at
     all: nothing was published (also with --accept-partial)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from pathlib import Path

from publishing.contract import KINDS
from publishing.gcpause import gc_paused

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _engine():
    from publishing.db import get_engine, upgrade

    engine = get_engine()
    upgrade(engine)
    return engine


def cmd_publish(args: argparse.Namespace) -> int:
    with gc_paused():  # a CLI run's imports: 60 ms less without collections between them
        from publishing.publish import publish
        from publishing.search.sync import sync  # noqa: F401 (imported here for the same reason)

    missing = [p for p in args.files if not p.exists()]
    if missing:
        print(f"文件不存在: {', '.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    if args.report and (problem := _unwritable(args.report)):
        print(f"报告文件 {args.report} 无法写入({problem}):未发布任何数据。", file=sys.stderr)
        return EXIT_USAGE
    engine = _engine()
    result = publish(args.files, kind=args.kind, mode=args.mode, accept_partial=args.accept_partial,
                     dry_run=args.dry_run, engine=engine)
    for rep in result.reports:
        d = rep.as_dict(result.published)
        print(f"{rep.file} [{rep.kind or '?'}] 行数 {d['rows']:,}  接受 {d['accepted']:,}  "
              f"拒绝 {len(rep.rejected):,}  新增 {d['added']:,}  变更 {d['changed']:,}  "
              f"撤回 {d['withdrawn']:,}  未变 {d['unchanged']:,}"
              + (f"  依申请处理保留 {d['held']:,}" if d.get("held") else ""))
        for rej in rep.rejected[:20]:
            print(f"  第{rej.row}行 [{rej.column}] {rej.value!r}: {rej.reason}", file=sys.stderr)
        if len(rep.rejected) > 20:
            print(f"  …另有 {len(rep.rejected) - 20} 条拒绝,见 --report", file=sys.stderr)
    if result.snapshot_skipped:
        print(f"警告:{result.snapshot_skipped}。", file=sys.stderr)
    if args.report:
        _write_report(args.report, result.as_json())
    if args.dry_run:
        print("试运行(--dry-run):未写入任何数据。")
    elif result.published:
        print(f"已发布:批次 {result.batch_id},变更事件 {result.events:,} 条。")
        if result.events:
            _after_publish(engine)
    elif result.unreadable:
        print("有无法读取的文件:未发布任何数据(--accept-partial 只对被拒绝的行有效)。",
              file=sys.stderr)
    else:
        print("有被拒绝的行:未发布任何数据(可用 --accept-partial 仅发布有效行)。", file=sys.stderr)
    if result.unreadable:
        return EXIT_USAGE
    if result.rejected and not args.accept_partial:
        return EXIT_REJECTED
    return EXIT_OK


def _unwritable(path: Path) -> str | None:
    """Why the report could not be written, checked before anything is published."""
    if path.is_dir():
        return "这是一个目录"
    folder = path.parent
    if not folder.is_dir():
        return f"目录 {folder} 不存在"
    if not os.access(path if path.exists() else folder, os.W_OK):
        return "没有写入权限"
    return None


def _write_report(path: Path, report: object) -> None:
    """Write the report; a failure now (the disk filled up …) is reported but never stops what
    comes after a publish, which is committed by now."""
    try:
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    except OSError as err:
        print(f"错误:报告文件 {path} 写入失败({err.strerror or err});发布结果不受影响。",
              file=sys.stderr)


def cmd_expire(args: argparse.Namespace) -> int:
    from publishing.expire import expire

    engine = _engine()
    counts = expire(engine)
    _after_publish(engine)
    print(f"到期撤下 {counts['expired']:,} 条;转为仅统计公开 {counts['aggregate']:,} 条;"
          f"恢复公开 {counts['republished']:,} 条;仅统计公开的到期不再统计 "
          f"{counts['expired_statistics']:,} 条。")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from publishing.export import csv_lines, iter_public, ndjson_lines

    records = iter_public(args.kind, _engine())
    lines = ndjson_lines(records) if args.format == "ndjson" else csv_lines(args.kind, records)
    with contextlib.ExitStack() as stack:
        out = (stack.enter_context(open(args.out, "w", encoding="utf-8", newline=""))
               if args.out else sys.stdout)
        for line in lines:
            out.write(line)
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    from publishing.sample import generate

    paths = generate(args.out, args.entities, seed=args.seed)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from publishing.settings import WeakSecretError, get_settings

    try:  # before any worker starts: one clear message instead of a traceback per worker
        _ = get_settings().secret_key
    except WeakSecretError as err:
        print(f"无法启动:{err}", file=sys.stderr)
        return EXIT_USAGE
    _engine()
    uvicorn.run("portal.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level="info")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from publishing.publish import publish
    from publishing.sample import generate

    engine = _engine()
    sample_dir = Path("var/sample")
    if not (sample_dir / "penalty.csv").exists():
        print(f"生成示例数据({args.entities:,} 个主体)…")
        generate(sample_dir, args.entities)
    paths = sorted(p for p in sample_dir.iterdir() if p.is_file())
    result = publish(paths, engine=engine)
    print(f"示例数据已发布:变更事件 {result.events:,} 条。")
    _after_publish(engine)
    print(f"门户: http://{args.host}:{args.port}/")
    return cmd_serve(argparse.Namespace(host=args.host, port=args.port, workers=1))


def _after_publish(engine) -> None:
    """Bring the search index up to date from the change log.

    Best effort: the data is already published; a failed sync is caught up by the next sync,
    the worker, or `disclosure reindex`."""
    from publishing.search.sync import sync

    try:
        applied = sync(engine)
    except Exception as err:  # noqa: BLE001 - reported, never fatal to a committed publish
        print(f"警告:搜索索引同步失败({err});稍后运行 disclosure reindex。", file=sys.stderr)
        return
    if applied:
        print(f"搜索索引已同步 {applied:,} 条变更。")


def cmd_reindex(args: argparse.Namespace) -> int:
    from publishing.search.sync import reindex

    count = reindex(_engine())
    print(f"搜索索引已重建:{count:,} 个文档。")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from portal.observability import configure_logging
    from publishing.worker import run_worker

    configure_logging()  # JSON lines when DISCLOSURE_LOG_FORMAT=json
    result = run_worker(_engine(), once=args.once, metrics_port=args.metrics_port)
    if args.once:
        print(json.dumps(result, default=str, ensure_ascii=False))
        # A failed job's result is its exception: a timer or cron running --once must see it.
        if any(isinstance(r, Exception) for r in result.values()):
            return EXIT_REJECTED
    return EXIT_OK


def cmd_opendata(args: argparse.Namespace) -> int:
    from publishing.opendata import build

    result = build(_engine())
    print(json.dumps(result, default=str, ensure_ascii=False))
    return EXIT_OK


def cmd_scrub(args: argparse.Namespace) -> int:
    """Exit 0 when done (or a dry run), 1 when ID numbers remain that are entity keys (for the
    operator), 2 for a report path that cannot be written."""
    from publishing.scrub import LABELS, refresh_outputs, scrub

    if args.report and (problem := _unwritable(args.report)):
        print(f"报告文件 {args.report} 无法写入({problem}):未处理任何数据。", file=sys.stderr)
        return EXIT_USAGE
    engine = _engine()
    result = scrub(engine, dry_run=args.dry_run)
    items = [*result.attention, *result.items]  # ids, fields and reasons: never a value
    for item in items[:20]:
        print(f"  {item['type']} {item['id']} [{item['field']}] {item['reason']}:"
              f"{LABELS[item['action']]}")
    if len(items) > 20:
        print(f"  …另有 {len(items) - 20} 项,见 --report")
    print("  ".join(f"{LABELS[k]} {v:,}" for k, v in sorted(result.counts.items()))
          or "未发现需要遮蔽的个人信息。")
    if args.report:
        _write_report(args.report, result.as_json())
    if args.dry_run:
        print("试运行(--dry-run):未写入任何数据。")
    elif result.wrote:
        print(f"已处理:批次 {result.batch_id},变更事件 {result.events:,} 条。")
        for warning in refresh_outputs(engine):
            print(f"警告:{warning}", file=sys.stderr)
    if result.attention:
        print(f"有 {len(result.attention)} 个主体以疑似身份证号为标识,需人工处理(见 --report)。",
              file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disclosure", description="烟台市市场监管信用信息公示与开放数据服务")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("publish", help="发布数据文件")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--mode", choices=("incremental", "snapshot"), default="incremental")
    p.add_argument("--accept-partial", action="store_true", help="有拒绝行时仍发布有效行")
    p.add_argument("--dry-run", action="store_true", help="只显示计划,不写入")
    p.add_argument("--report", type=Path, metavar="R.json")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("expire", help="撤下公示期届满的记录")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("reindex", help="从数据库重建搜索索引")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("worker", help="后台任务:搜索同步、到期撤下、开放数据、提醒邮件")
    p.add_argument("--once", action="store_true", help="每项任务运行一次后退出")
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus 指标端口")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("opendata", help="生成开放数据快照、每日增量文件和 index.json")
    p.set_defaults(func=cmd_opendata)

    p = sub.add_parser("scrub", help="按现行规则遮蔽已存储数据中的个人信息")
    p.add_argument("--dry-run", action="store_true", help="只显示将处理的数据,不写入")
    p.add_argument("--report", type=Path, metavar="R.json")
    p.set_defaults(func=cmd_scrub)

    p = sub.add_parser("export", help="导出已公示记录")
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    p.add_argument("--out", type=Path)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("sample", help="生成示例数据文件")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--entities", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=20261127)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("serve", help="启动门户")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="生成并发布示例数据,然后启动门户")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--entities", type=int, default=5000)
    p.set_defaults(func=cmd_demo)

    from portal.cli_casework import add_commands  # users add / users token / audit verify

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code = args.func(args)
    # What is left is the interpreter's teardown, whose collections walk every object the imports
    # made, module by module (0.15–0.3 s of a 20-row publish): spare them the walk.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
