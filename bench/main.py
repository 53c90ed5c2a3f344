"""`bench/run`: run the benchmarks, print the table, write `bench/results.json`.

    bench/run                  every benchmark, full sizes
    bench/run --quick          every benchmark, small sizes (meant for under 3 minutes)
    bench/run --only B1,B3     some of them
    bench/run --only B9 --merge   B9 alone, keeping the other benchmarks' results in the file
    bench/run --smoke          tiny sizes: every benchmark still runs (figures mean nothing)
    bench/run --self-check     a few seconds: the harness, the signing and the generator work

Each benchmark starts its own processes (private redis-server, emulator, gunicorn, workers) and
stops them, so any one can run alone. Timings are never judged alone: each figure has its baseline
from the same run, on the same machine, at the same moment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench import (
    b1_ingest,
    b2_pre_event,
    b3_end_to_end,
    b4_job_overhead,
    b5_scaling,
    b6_cleanup,
    b7_ledger,
    b8_reconcile,
    b9_sessions,
    machine,
    report,
)
from bench.sizes import FULL, QUICK, SMOKE

BENCHMARKS = {
    "B1": b1_ingest.run,
    "B2": b2_pre_event.run,
    "B3": b3_end_to_end.run,
    "B4": b4_job_overhead.run,
    "B5": b5_scaling.run,
    "B6": b6_cleanup.run,
    "B7": b7_ledger.run,
    "B8": b8_reconcile.run,
    "B9": b9_sessions.run,
}
RESULTS = Path(__file__).resolve().parent / "results.json"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (meant for under 3 minutes)"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes: that each benchmark runs, no figures"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated benchmarks to run, e.g. B1,B3 (default all)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the results of benchmarks not run from the file, replacing only those run "
        "(each benchmark's own run is recorded with it)",
    )
    parser.add_argument(
        "--self-check", action="store_true", help="check the harness in a few seconds and exit"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.self_check:
        from bench import selfcheck

        return selfcheck.run()
    chosen = [b.strip().upper() for b in args.only.split(",") if b.strip()] or list(BENCHMARKS)
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    document = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": sizes.name,
        "benchmarks_run": chosen,
        "machine": machine.describe(),
        "versions": machine.versions(),
        "code": machine.code(),
        "sizes": sizes.__dict__,
        "bindery_settings": machine.bindery_settings(),
    }
    started = time.monotonic()
    reports = []
    for name in chosen:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            result = BENCHMARKS[name](sizes)
        except Exception as error:  # noqa: BLE001 - one failed benchmark must not hide the others
            result = report.Report(name, "failed", error=f"{type(error).__name__}: {error}")
            traceback.print_exc()
        result.wall_s = time.monotonic() - began
        result.details["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        reports.append(result)
        print(report.table([result]), flush=True)
    document["wall_s"] = wall = round(time.monotonic() - started, 1)
    document["benchmarks"] = [r.to_dict() for r in reports]
    if args.merge and args.out.exists():
        document = report.merged(json.loads(args.out.read_text()), document)
    report.write(args.out, document)
    print(report.summary(reports))
    print(f"{sizes.name} run of {', '.join(chosen)} in {wall:.0f} s; wrote {args.out}")
    return 1 if any(r.error for r in reports) else 0
