"""What compiling the cleaning code would buy: the cleaning process's work (ingest_floor's first
half: read, validate, mask, build the stored form, pickle) for every row of the sample files,
once as the pure Python modules and once compiled to C with mypyc, in a copy of the package.

The SQLite ingest target (50,000 records/s) needs the cleaning to cost well under half of what
it costs now (bench/README). mypyc is the compiler that needs no rewrite: it takes the typed
modules as they are. This script measures what it gives; nothing of it is installed or shipped.

    .venv/bin/pip install mypy      # mypyc comes with it; not a project dependency
    .venv/bin/python bench/compiled_cleaning.py --entities 100000 [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# DISCLOSURE_BENCH_OUT: elsewhere (the smoke test of the scripts runs them in a temporary folder)
OUT = Path(os.environ.get("DISCLOSURE_BENCH_OUT") or ROOT / "bench" / "out")
# Every module the cleaning process runs per row (sources, cleaning and masking, the stored form).
COMPILED = ["clean", "redact", "codes", "contract", "rows", "plan", "rules", "ids",
            "sources/headers", "sources/table"]


def compile_copy(into: Path) -> float:
    """Copy the package into `into` and compile the modules there; the seconds mypyc took."""
    shutil.copytree(ROOT / "publishing", into / "publishing",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mypyc", *(f"publishing/{m}.py" for m in COMPILED)],
                          cwd=into, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"mypyc failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - t


def cleaning_seconds(package_root: Path, sample: Path) -> tuple[int, float, str]:
    """Rows, seconds and the module file of publishing.clean, cleaning `sample` in a fresh
    process that imports the package from `package_root`."""
    code = (f"import sys; sys.path[:0] = [{str(package_root)!r}, {str(ROOT / 'bench')!r}]\n"
            "import ingest_floor, publishing.clean as c\n"
            f"rows, seconds = ingest_floor.cleaning(__import__('pathlib').Path({str(sample)!r}))\n"
            "print(rows, seconds, c.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=package_root, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1]), out[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("gcc") is None:
        raise SystemExit("gcc is needed to compile")
    try:
        import mypyc  # noqa: F401
    except ImportError:
        raise SystemExit("mypyc is missing: .venv/bin/pip install mypy") from None
    sample = OUT / f"sample-{args.entities}"
    if not sample.exists():
        subprocess.run([sys.executable, "-m", "portal.cli", "sample", "--out", str(sample),
                        "--entities", str(args.entities)], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="disclosure-mypyc-") as tmp:
        print(f"mypyc compiled {len(COMPILED)} modules in {compile_copy(Path(tmp)):.0f} s", flush=True)
        results: dict[str, list[float]] = {"pure Python": [], "mypyc": []}
        for _ in range(args.runs):  # alternated, so a change in the machine's speed hits both
            for label, root in (("pure Python", ROOT), ("mypyc", Path(tmp))):
                rows, seconds, module = cleaning_seconds(root, sample)
                if (label == "mypyc") != module.endswith(".so"):
                    raise SystemExit(f"{label}: publishing.clean came from {module}")
                results[label].append(seconds)
    pure = statistics.median(results["pure Python"])
    for label, runs in results.items():
        best = statistics.median(runs)
        print(f"{label:>12}: {rows:,} rows, median {best:.2f} s ({best / rows * 1e6:.1f} us a row, "
              f"{rows / best:,.0f} rows/s); runs {', '.join(f'{s:.2f}' for s in runs)}; "
              f"{pure / best:.2f}x")


if __name__ == "__main__":
    main()
