"""The `disclosure` command line. Publishing verbs are thin calls into `publishing`.

Exit codes of `disclosure publish`:
  0  published (with --accept-partial: the valid rows were published; the report lists rejects)
  1  rows were rejected: nothing was published (also with --accept-partial when every row was)
  2  usage error, a report path that cannot be written, a file that could not be read at
     all (or holds no record), or an invalid publicity rules file (any verb): nothing was
     published (also with --accept-partial)
  3  the database could not be reached (or failed midway), or its URL is one this service
     cannot run on (an in-memory SQLite database; any verb): nothing was published
  4  published, but the --report file could not be written afterwards
  5  snapshot mode: the files would withdraw a large share of a kind's published records (a
     truncated export?): nothing was published; --allow-mass-withdrawal confirms it
A dry run exits as the run itself would (0, 1, 2 or 5), having written nothing.
Of `disclosure export`: 0 done; 1 the output ended early (a closed pipe, a full disk); 2 --out
cannot be written; 3 the database could not be reached (so also for expire, reindex, opendata
and scrub).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portal.cli_database import EXIT_DATABASE, database_errors, open_database
from portal.cli_help import Parser
from publishing.contract import KINDS
from publishing.gcpause import gc_paused

if TYPE_CHECKING:  # imported when a verb runs: `disclosure --help` stays fast
    from publishing.publish import FileReport
    from publishing.rows import Reject

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_REPORT = 0, 1, 2, 4
EXIT_MASS_WITHDRAWAL = 5  # publish: a snapshot's withdrawals over the guard, not allowed
EXIT_CUT_SHORT = 1  # export: the output ended before the last record
# Rejects listed on stderr when --report lists them all (without one, stderr lists every one).
SHOWN_REJECTS = 20
# What became of a file's rows (and of records they touched), as the report's keys name it.
# The first four are always shown, the others when not zero.
COUNT_LABELS = {
    "added": "新增", "changed": "变更", "withdrawn": "撤回", "unchanged": "未变",
    "withdrawn_quietly": "撤回（未公示的记录）", "held": "依申请处理保留", "expired": "到期撤下",
    "stored_expired": "已过公示期（不公示）",
    "stored_aggregate": "仅统计公开", "stored_superseded": "已被较新标注取代（不公示）",
    "superseded": "取代旧标注", "restored": "旧标注恢复公示",
}
ALWAYS_SHOWN = ("added", "changed", "withdrawn", "unchanged")


@database_errors("未发布任何数据")
def cmd_publish(args: argparse.Namespace) -> int:
    with gc_paused():  # a CLI run's imports: 60 ms less without collections between them
        from publishing.publish import publish
        from publishing.search.sync import sync  # noqa: F401 (imported here for the same reason)

    missing = [p for p in args.files if not p.exists()]
    if missing:
        print(f"文件不存在：{'、'.join(map(str, missing))}", file=sys.stderr)
        return EXIT_USAGE
    if args.report and (problem := _unwritable(args.report)):
        print(f"报告文件 {args.report} 无法写入（{problem}）：未发布任何数据。", file=sys.stderr)
        return EXIT_USAGE
    engine = open_database()
    result = publish(args.files, kind=args.kind, mode=args.mode, accept_partial=args.accept_partial,
                     dry_run=args.dry_run, engine=engine,
                     allow_mass_withdrawal=args.allow_mass_withdrawal)
    # Counts of a run that publishes nothing are what it would have done: said so on the line.
    hypothetical = "试运行" if args.dry_run else (None if result.published else "未发布")
    for rep in result.reports:
        print(_file_summary(rep, hypothetical))
        _print_rejects(rep, args.report)
    if result.snapshot_skipped:
        print(f"警告：{result.snapshot_skipped}。", file=sys.stderr)
    for mass in result.mass_withdrawals:
        print(f"{'警告' if mass.allowed else '错误'}：{mass.message()}。", file=sys.stderr)
    reported = True
    if args.report:
        outcome = "已发布的数据不受影响" if result.published else "本次未发布任何数据"
        reported = _write_report(args.report, result.as_json(), outcome)
    if args.dry_run:
        print("试运行（--dry-run）：未写入任何数据。")
        if result.refused:
            print("试运行：正式发布将被拒绝（退出码 5），原因见上。", file=sys.stderr)
    elif result.published:
        print(f"已发布：批次 {result.batch_id}，变更事件 {result.events:,} 条。")
        _after_publish(engine)  # also without events: records withdrawn quietly (search_pending)
    elif result.unreadable:
        print("有无法读取的文件：未发布任何数据（--accept-partial 只对被拒绝的行有效）。",
              file=sys.stderr)
    elif result.refused:
        pass  # said above, kind by kind, with how to confirm it
    elif args.accept_partial:
        print("所有行都被拒绝：未发布任何数据。", file=sys.stderr)
    else:
        print("有被拒绝的行：未发布任何数据（可用 --accept-partial 仅发布有效行）。", file=sys.stderr)
    if result.unreadable:
        return EXIT_USAGE
    if result.refused:
        return EXIT_MASS_WITHDRAWAL
    if not result.publishable:
        return EXIT_REJECTED
    return EXIT_OK if reported else EXIT_REPORT


def _file_summary(rep: FileReport, hypothetical: str | None = None) -> str:
    """One line a file: rejected rows (not reasons, a row may have several) so that
    接受 + 拒绝 = 行数, then every count the report has; for a run that published nothing
    (hypothetical: 试运行 / 未发布), the counts in brackets as what publishing would do."""
    head = f"{rep.file} [{rep.kind or '?'}]"
    if rep.unreadable:
        return f"{head} 无法读取"
    reasons = len(rep.rejected)
    rejected = f"拒绝 {rep.rejected_rows:,}" + (
        f"（{reasons:,} 处问题）" if reasons != rep.rejected_rows else "")
    counts = [f"{COUNT_LABELS.get(k, k)} {n:,}" for k, n in _counts(rep.counts)]
    if hypothetical:
        refused = rep.mass_withdrawal is not None and rep.mass_withdrawal.refused
        condition = "不含被拒绝的快照撤回，见下" if refused else "若发布"
        counts = [f"{hypothetical}（{condition}：{'  '.join(counts)}）"]
    return "  ".join([f"{head} 行数 {rep.rows:,}", f"接受 {rep.accepted:,}", rejected, *counts])


def _counts(counts: dict[str, int]) -> list[tuple[str, int]]:
    """The four main counts, then the others that are not zero, known ones in label order."""
    order = [*COUNT_LABELS, *sorted(set(counts) - set(COUNT_LABELS))]
    return [(k, counts.get(k, 0)) for k in order if k in ALWAYS_SHOWN or counts.get(k)]


def _print_rejects(rep: FileReport, report: Path | None) -> None:
    """Every reject with its file (all of them unless --report lists them in full)."""
    if rep.unreadable:  # a file-level reason; its row (0, or a JSON syntax error's) is in it
        for rej in rep.rejected:
            print(f"  {rep.file}：{rej.reason}", file=sys.stderr)
        return
    shown = rep.rejected[:SHOWN_REJECTS] if report else rep.rejected
    for rej in shown:
        print(f"  {rep.file} {_reject_text(rej)}", file=sys.stderr)
    if len(shown) < len(rep.rejected):
        print(f"  …另有 {len(rep.rejected) - len(shown):,} 条拒绝，全部见报告 {report}",
              file=sys.stderr)


def _reject_text(rej: Reject) -> str:
    """第N行 [列] “值”：原因, the value as the report holds it (masked, a date in ISO form)."""
    value = rej.as_dict()["value"]
    parts = [f"第{rej.row}行"]
    if rej.column is not None:
        parts.append(f"[{rej.column}]")
    if value is not None:
        parts.append(f"“{_shown(value)}”")
    return " ".join(parts) + f"：{rej.reason}"


def _shown(value: Any) -> str:
    """A value on one line, without Python's notation (5000.0 → 5000, line breaks as ⏎)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\r\n", "⏎").replace("\n", "⏎")


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


def _write_report(path: Path, report: object, outcome: str = "发布结果不受影响") -> bool:
    """Write the report; a failure now (the disk filled up …) is reported (False) but never
    stops what comes after a publish, which is committed by now."""
    try:
        path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    except OSError as err:
        print(f"错误：报告文件 {path} 写入失败（{err.strerror or err}）；{outcome}。", file=sys.stderr)
        return False
    return True


@database_errors("未处理任何记录")
def cmd_expire(args: argparse.Namespace) -> int:
    from publishing.expire import expire

    engine = open_database(create=False)
    counts = expire(engine, recompute=args.recompute, dry_run=args.dry_run)
    if args.recompute:
        print(f"重算公示期：公示期变更 {counts['period_changed']:,} 条，其中因此到期撤下 "
              f"{counts['period_expired']:,} 条、恢复公示 {counts['period_returned']:,} 条；"
              f"被较新标注取代而撤下的旧标注 {counts['superseded']:,} 条。")
    print(f"到期撤下 {counts['expired']:,} 条；转为仅统计公开 {counts['aggregate']:,} 条；"
          f"恢复公开 {counts['republished']:,} 条；仅统计公开的到期不再统计 "
          f"{counts['expired_statistics']:,} 条。")
    if args.dry_run:
        print("试运行（--dry-run）：未写入任何数据。")
    else:
        _after_publish(engine)
    return EXIT_OK


@database_errors("导出未完成")
def cmd_export(args: argparse.Namespace) -> int:
    from publishing.export import csv_lines, iter_public, ndjson_lines

    records = iter_public(args.kind, open_database(create=False))
    lines = ndjson_lines(records) if args.format == "ndjson" else csv_lines(args.kind, records)
    with contextlib.ExitStack() as stack:
        try:
            out = (stack.enter_context(open(args.out, "w", encoding="utf-8", newline=""))
                   if args.out else sys.stdout)
        except OSError as err:
            print(f"错误：无法写入 {args.out}（{err.strerror or err}）：未导出任何记录。",
                  file=sys.stderr)
            return EXIT_USAGE
        try:
            for line in lines:
                out.write(line)
            out.flush()
        except BrokenPipeError:  # `| head`: the reader has what it wanted
            _quiet_stdout()
            print("导出提前结束：输出管道已被关闭。", file=sys.stderr)
            return EXIT_CUT_SHORT
        except OSError as err:
            print(f"错误：写入 {args.out or '标准输出'} 失败（{err.strerror or err}）：导出不完整。",
                  file=sys.stderr)
            return EXIT_CUT_SHORT
    return EXIT_OK


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush would fail on the closed pipe
    again (and say so on stderr)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _at_least_one(text: str) -> int:
    """argparse type: an integer of 1 or more (the usage error names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为整数，而不是“{text}”") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"至少为 1，而不是 {value}")
    return value


def cmd_sample(args: argparse.Namespace) -> int:
    from publishing.sample import generate

    try:
        paths = generate(args.out, args.entities, seed=args.seed)
    except OSError as err:
        print(f"错误：无法写入 {args.out}（{err.strerror or err}）。", file=sys.stderr)
        return EXIT_USAGE
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.observability import configure_logging
    from publishing.request_config import RequestConfigError, load_config
    from publishing.settings import WeakSecretError, get_settings

    try:  # before any worker starts: one clear message instead of a traceback per worker
        _ = get_settings().secret_key
        # the back office and the request pages are built from it. (Not the rules file: the
        # bureau edits it in place, and a bad edit must not keep the public site from starting;
        # only the pages that need the rules fail, and the worker reports it.)
        load_config()
    except (WeakSecretError, RequestConfigError) as err:
        print(f"无法启动：{err}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging()  # JSON lines when DISCLOSURE_LOG_FORMAT=json, migration's warnings too
    open_database()
    uvicorn.run("portal.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, **_uvicorn_logging())
    return EXIT_OK


def _uvicorn_logging() -> dict[str, Any]:
    """uvicorn's logging: the app's JSON lines when DISCLOSURE_LOG_FORMAT=json. The app sets
    them when it is made, but with --workers N uvicorn's parent process never makes it, and
    its lines ("Started parent process") were text in a JSON log."""
    from portal.observability import _log_level, json_logs_wanted, logging_config

    if not json_logs_wanted():
        return {"log_level": "info"}
    # DISCLOSURE_LOG_LEVEL's level, as the app's (None: uvicorn does not override it)
    return {"log_config": logging_config("json", _log_level()), "log_level": None}


DEMO_SAMPLE_DIR = Path("var/sample")
DEMO_SEED = 20261127  # the generator's default, as `disclosure sample`'s
# beside the sample's files, what it was made with: a later --entities N must not reuse it
DEMO_STAMP = "made-with.json"


def cmd_demo(args: argparse.Namespace) -> int:
    from publishing.opendata import build as build_opendata

    _demo_base_url(args.host, args.port)
    engine = open_database()
    _demo_publish(engine, DEMO_SAMPLE_DIR, args.entities)
    _after_publish(engine)
    # the open-data downloads too, which a deployment's worker builds nightly
    opendata_index = build_opendata(engine)
    print(f"开放数据已生成：版本 {opendata_index['version']}。")
    print(f"门户：http://{args.host}:{args.port}/")
    return cmd_serve(argparse.Namespace(host=args.host, port=args.port, workers=1))


def _demo_publish(engine, sample_dir: Path, entities: int, seed: int = DEMO_SEED) -> None:
    """Publish the demo's sample of `entities` entities, made anew when the one in sample_dir
    was made otherwise. A new sample replacing an earlier one is published as a snapshot:
    the two share few records, and added on top the demo would show both."""
    from publishing.publish import publish
    from publishing.sample import FILES

    made_before = _demo_sample_made_with(sample_dir)
    wanted = {"entities": entities, "seed": seed}
    if made_before == wanted:
        print(f"示例数据：沿用 {sample_dir}（{entities:,} 个主体）。")
        mode = "incremental"
    else:
        replaced = made_before is not None or (sample_dir / FILES["penalty"]).exists()
        earlier = f"，此前为 {made_before['entities']:,} 个" if made_before else ""
        print(f"示例数据：{'重新' if replaced else ''}生成 {sample_dir}（{entities:,} 个主体{earlier}）…")
        _demo_make_sample(sample_dir, wanted)
        # a first sample goes in as before: the database may hold more than demo data
        mode = "snapshot" if replaced else "incremental"
    result = publish([sample_dir / name for name in FILES.values()], engine=engine, mode=mode,
                     allow_mass_withdrawal=mode == "snapshot")
    withdrawn = "，不在新示例数据中的记录已撤回" if mode == "snapshot" else ""
    print(f"示例数据已发布：变更事件 {result.events:,} 条{withdrawn}。")


def _demo_sample_made_with(sample_dir: Path) -> dict[str, int] | None:
    """What the sample in sample_dir was made with (None: no sample, or one made before the
    stamp existed, whose size is unknown)."""
    try:
        made = json.loads((sample_dir / DEMO_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return made if isinstance(made, dict) else None


def _demo_make_sample(sample_dir: Path, made_with: dict[str, int]) -> None:
    from publishing.sample import generate

    stamp = sample_dir / DEMO_STAMP
    stamp.unlink(missing_ok=True)  # a generation cut short is made again next time
    generate(sample_dir, made_with["entities"], seed=made_with["seed"])
    stamp.write_text(json.dumps(made_with), encoding="utf-8")


def _demo_base_url(host: str, port: int) -> None:
    """Absolute links (feeds, e-mails) point at the demo's own address unless
    DISCLOSURE_BASE_URL says otherwise: the default names port 8000, wrong with --port."""
    from publishing.settings import get_settings

    if "base_url" not in get_settings().model_fields_set:
        os.environ["DISCLOSURE_BASE_URL"] = f"http://{host}:{port}"
        get_settings.cache_clear()


def _after_publish(engine) -> None:
    """Bring the search index up to date from the change log.

    Best effort: the data is already published; a failed sync is caught up by the next sync,
    the worker, or `disclosure reindex`."""
    from publishing.search.sync import sync

    try:
        applied = sync(engine)
    except Exception as err:  # noqa: BLE001 - reported, never fatal to a committed publish
        print(f"警告：搜索索引同步失败（{err}）；稍后运行 disclosure reindex。", file=sys.stderr)
        return
    if applied:
        print(f"搜索索引已同步 {applied:,} 条变更。")


@database_errors("搜索索引未重建")
def cmd_reindex(args: argparse.Namespace) -> int:
    from publishing.search.sync import reindex

    count = reindex(open_database(create=False))
    print(f"搜索索引已重建：{count:,} 个文档。")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from portal.observability import configure_logging
    from publishing.worker import run_worker

    configure_logging(text=True)  # JSON lines when DISCLOSURE_LOG_FORMAT=json, else text
    result = run_worker(open_database(), once=args.once, metrics_port=args.metrics_port)
    if args.once:
        print(json.dumps(result, default=str, ensure_ascii=False))
        # A failed job's result is its exception: a timer or cron running --once must see it.
        if any(isinstance(r, Exception) for r in result.values()):
            return EXIT_REJECTED
    return EXIT_OK


@database_errors("开放数据文件未生成")
def cmd_opendata(args: argparse.Namespace) -> int:
    import errno
    from collections import Counter

    from publishing.opendata import INDEX_NAME, EmptyChangeLog, build, default_dir, load_index

    engine = open_database(create=False)
    before = (load_index(default_dir()) or {}).get("build")
    try:
        result = build(engine)
    except EmptyChangeLog as err:
        print(f"错误：{err}。", file=sys.stderr)
        return EXIT_DATABASE
    except OSError as err:  # disk full, no permission: build has deleted what it wrote
        full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        cause = "磁盘空间不足" if full else (err.strerror or str(err))
        after = (load_index(default_dir()) or {}).get("build")
        outcome = ("新的开放数据文件已生成并提供，收尾未完成（下次生成时完成）" if after != before
                   else "本次写入的文件已删除，已有的开放数据文件未改动")
        print(f"错误：无法写入开放数据文件 {default_dir()}（{cause}）：{outcome}。", file=sys.stderr)
        return EXIT_REJECTED
    kinds = Counter(f["type"] for f in result["files"])
    done = "已是最新（自上次生成以来没有变更，未改写文件）" if result.get("build") == before else "已生成"
    print(f"开放数据{done}：版本 {result['version']}，seq {result['seq']:,}，快照文件 "
          f"{kinds['snapshot']} 个，每日增量文件 {kinds['delta']} 个（{default_dir() / INDEX_NAME}）。")
    return EXIT_OK


@database_errors("未处理任何数据")
def cmd_scrub(args: argparse.Namespace) -> int:
    """Exit 0 when done (or a dry run), 1 when ID numbers remain that are entity keys (for the
    operator), 2 for a report path that cannot be written."""
    from publishing.scrub import LABELS, refresh_outputs, scrub

    if args.report and (problem := _unwritable(args.report)):
        print(f"报告文件 {args.report} 无法写入（{problem}）：未处理任何数据。", file=sys.stderr)
        return EXIT_USAGE
    engine = open_database(create=False)
    result = scrub(engine, dry_run=args.dry_run)
    items = [*result.attention, *result.items]  # ids, fields and reasons: never a value
    for item in items[:20]:
        print(f"  {item['type']} {item['id']} [{item['field']}] {item['reason']}："
              f"{LABELS[item['action']]}")
    if len(items) > 20:
        print(f"  …另有 {len(items) - 20} 项，见 --report")
    print("  ".join(f"{LABELS[k]} {v:,}" for k, v in sorted(result.counts.items()))
          or "未发现需要遮蔽的个人信息。")
    if args.report:
        _write_report(args.report, result.as_json())
    if args.dry_run:
        print("试运行（--dry-run）：未写入任何数据。")
    elif result.wrote:
        print(f"已处理：批次 {result.batch_id}，变更事件 {result.events:,} 条。")
        for warning in refresh_outputs(engine):
            print(f"警告：{warning}", file=sys.stderr)
    if result.attention:
        print(f"有 {len(result.attention)} 个主体以疑似身份证号为标识，需人工处理（见 --report）。",
              file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="disclosure", description="烟台市市场监管信用信息公示与开放数据服务")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("publish", help="发布数据文件")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="CSV（UTF-8 或 GB18030/GBK）、XLSX、JSON 或 NDJSON 文件；同一命令的文件在一个事务中发布")
    p.add_argument("--kind", choices=KINDS,
                   help="数据类别（默认按表头识别）：penalty 行政处罚，blacklist 黑榜，"
                        "credit_mark 信用标注，return_pledge 无理由退货承诺")
    p.add_argument("--mode", choices=("incremental", "snapshot"), default="incremental",
                   help="incremental（默认）：逐行新增、变更，操作列（退货承诺为状态列）为“撤销”的行撤回；"
                        "snapshot：文件为该类别的全部记录，文件中没有的已公示记录撤回")
    p.add_argument("--accept-partial", action="store_true", help="有拒绝行时仍发布有效行")
    p.add_argument("--dry-run", action="store_true", help="只显示计划，不写入")
    p.add_argument("--allow-mass-withdrawal", action="store_true",
                   help="快照模式：确认撤回某类已公示记录的大部分（超过 25%% 且不少于 10 条），"
                        "或某区市的全部或几乎全部（至少 90%% 且不少于 10 条）；"
                        "否则视为文件不完整，不发布任何数据，退出码 5")
    p.add_argument("--report", type=Path, metavar="R.json",
                   help="把发布报告（每个被拒绝的行：行、列、值、原因；各项计数）写入 JSON 文件")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("expire", help="撤下公示期届满的记录")
    p.add_argument("--recompute", action="store_true",
                   help="先按现行公示规则重算已存储记录的公示截止日期和可修复日期"
                        "（修改 publicity.toml 后运行）")
    p.add_argument("--dry-run", action="store_true", help="只显示将处理的记录数，不写入")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("reindex", help="从数据库重建搜索索引")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("worker", help="后台任务：搜索同步、到期撤下、开放数据、提醒邮件")
    p.add_argument("--once", action="store_true",
                   help="运行一次到期的任务（及一次搜索同步）后退出；有任务失败则退出码为 1")
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus 指标端口")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("opendata", help="生成开放数据快照、每日增量文件和 index.json")
    p.set_defaults(func=cmd_opendata)

    p = sub.add_parser("scrub", help="按现行规则遮蔽已存储数据中的个人信息")
    p.add_argument("--dry-run", action="store_true", help="只显示将处理的数据，不写入")
    p.add_argument("--report", type=Path, metavar="R.json",
                   help="把处理清单（记录编号、字段、原因、处理方式，不含原值）写入 JSON 文件")
    p.set_defaults(func=cmd_scrub)

    p = sub.add_parser("export", help="导出已公示记录")
    p.add_argument("--kind", choices=KINDS, required=True, help="数据类别")
    p.add_argument("--format", choices=("ndjson", "csv"), default="ndjson",
                   help="ndjson（默认，与 API 相同的字段）或 csv（UTF-8 带 BOM）")
    p.add_argument("--out", type=Path, help="输出文件（默认写到标准输出）")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("sample", help="生成示例数据文件")
    p.add_argument("--out", type=Path, required=True, help="输出目录（四类数据各一个文件）")
    p.add_argument("--entities", type=_at_least_one, default=10_000,
                   help="市场主体数（默认 10000；记录数约为其 1.7 倍）")
    p.add_argument("--seed", type=int, default=20261127, help="随机种子（相同种子生成相同数据）")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("serve", help="启动门户")
    p.add_argument("--host", default="127.0.0.1", help="监听地址（默认 127.0.0.1）")
    p.add_argument("--port", type=int, default=8000, help="端口（默认 8000）")
    p.add_argument("--workers", type=int, default=1, help="进程数（默认 1）")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="生成并发布示例数据，然后启动门户")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--entities", type=int, default=5000)
    p.set_defaults(func=cmd_demo)

    from portal.cli_casework import add_commands  # users add / users token / audit verify

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from publishing.db import UnsupportedDatabase  # after --help, which stays fast
    from publishing.request_config import RequestConfigError
    from publishing.rules import RulesError

    try:
        code = args.func(args)
    except UnsupportedDatabase as err:  # every verb: one line, not a traceback
        print(f"错误：{err}", file=sys.stderr)
        return EXIT_DATABASE
    except (RulesError, RequestConfigError) as err:  # an unreadable or invalid data file: the
        print(f"错误：{err}", file=sys.stderr)  # message names it (and the key)
        return EXIT_USAGE
    # What is left is the interpreter's teardown, whose collections walk every object the imports
    # made, module by module (0.15–0.3 s of a 20-row publish): spare them the walk.
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
