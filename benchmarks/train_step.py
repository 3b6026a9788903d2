"""Training-step throughput and peak memory: reformer-ko beside raw reformer-pytorch, transformers' Reformer and
BERT / GPT-2 with SDPA (flash) attention, at the same width, depth, heads and vocabulary.

    python benchmarks/train_step.py                    # CPU plan, fp32, every case in a fresh subprocess
    python benchmarks/train_step.py --device cuda      # GPU plan, bf16 autocast (see benchmarks/run_gpu.sh)
    python benchmarks/train_step.py --dry-run          # tiny sizes, every code path, under a minute on CPU

One step = forward + loss + backward + AdamW on random token ids; each case runs `--warmup` steps, then
`--steps` timed steps, and reports the median. Peak memory is `torch.cuda.max_memory_allocated` on a GPU and the
peak RSS of a fresh subprocess per case on CPU. An out-of-memory case is a row with status "oom".

Before the table, the wrapper-overhead check (benchmarks/overhead.py) steps raw `ReformerLM`, reformer-ko with its
structure and the same weights, the same with reformer-pytorch's attention, and reformer-ko alternately in one
process and reports the round-by-round ratios to raw `ReformerLM`.

The implementations and their inputs are benchmarks/models.py's, a case is run and timed by benchmarks/timing.py,
and the reports are written by benchmarks/reports.py; this script is the plans and the command line.

Writes train_step_<device>.json (machine, versions, settings, every row), .md (tables with ratios) and .png (tokens/s
-- per CPU-second on CPU -- and peak memory against sequence length; skipped with a message when matplotlib is
missing) to `--out`. `--report-only FILE.json` rewrites the .md and .png of a saved run.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.machine import load_average, machine_and_versions  # noqa: E402
from benchmarks.models import GPU_ONLY, IMPLEMENTATIONS, MLM_ONLY, TASKS  # noqa: E402
from benchmarks.overhead import measure_overhead  # noqa: E402
from benchmarks.reports import RESULTS, gib, write_json, write_reports  # noqa: E402
from benchmarks.timing import TimeBudget, default_dtype, run_case, run_case_in_subprocess  # noqa: E402

# (task, sequence length, batch) per plan, run in this order. The GPU plan is the one of shared/ANCHORS.md, most
# telling cases first (a lent GPU's time is short: the cases past the time budget are recorded as skipped).
PLANS = {
    "cuda": [
        ("mlm", 4096, 4),
        ("clm", 5120, 4),
        ("mlm", 65536, 1),
        ("mlm", 512, 32),
        ("mlm", 16384, 1),
        ("clm", 32768, 1),
    ],
    "cpu": [("mlm", 512, 1), ("mlm", 2048, 1), ("clm-3l", 512, 1), ("clm-3l", 1024, 1)],
    "dry-run": [("tiny-mlm", 64, 2), ("tiny-mlm", 128, 2), ("tiny-clm", 64, 2)],
}
# Where the wrapper-overhead check runs (it times four models round after round, so keep it short on CPU), with
# the autocast dtype when not the run's. On a GPU the bf16 ratio includes reformer-ko's autocast-aware reversible
# backward (reformer-pytorch recomputes in fp32), so the fp32 check is the one that isolates the overhead.
OVERHEAD_PLANS = {
    "cuda": [("mlm", 4096, 4, "fp32"), ("mlm", 4096, 4)],
    "cpu": [("mlm", 512, 1), ("clm-3l", 512, 1)],
    "dry-run": [("tiny-mlm", 64, 2), ("tiny-clm", 64, 2)],
}
STEP_DEFAULTS = {"cuda": (3, 8, 12), "cpu": (2, 5, 10), "dry-run": (1, 2, 2)}  # warm-up, timed steps, rounds


def run_overhead_checks(args, tasks, report, budget):
    """The plan's wrapper-overhead checks, into report["overhead"]."""
    for task_name, seq_len, batch, *dtype in OVERHEAD_PLANS[args.plan]:
        if task_name not in tasks:
            continue
        dtype = dtype[0] if dtype else args.dtype
        where = dict(task=task_name, seq_len=seq_len, batch=batch, dtype=dtype)
        if budget.spent():
            report["overhead"].append(dict(where, rounds=0, status="skipped (time budget)"))
            continue
        check = measure_overhead(
            task_name, seq_len, batch, args.device, dtype, args.warmup, args.overhead_rounds, args.profile_steps
        )
        report["overhead"].append(check)
        if check["status"] != "ok":
            print(f"overhead {task_name} {seq_len}x{batch} {dtype}: {check['status']}", flush=True)
            continue
        for prefix in ("", "cpu_") if args.device == "cpu" else ("",):
            summary = ", ".join(
                f"{name} {r['median']:.3f} ({r['min']:.3f}–{r['max']:.3f})"
                for name, r in check[f"{prefix}ratio_to_reformer_pytorch"].items()
            )
            clock = "CPU-time" if prefix else "step-time"
            print(
                f"overhead {task_name} {seq_len}x{batch} {dtype}: {clock} ratio to reformer-pytorch: {summary}",
                flush=True,
            )


def plan_cases(args, tasks):
    """The plan's (task, length, batch) cases of `tasks`, each with every implementation that applies to it."""
    return [
        dict(task=task_name, seq_len=seq_len, batch=batch, impl=impl)
        for task_name, seq_len, batch in PLANS[args.plan]
        if task_name in tasks
        for impl in args.impls
        if not (args.plan == "cpu" and impl in GPU_ONLY) and not (TASKS[task_name].causal and impl in MLM_ONLY)
    ]


def run_cases(args, tasks, report, budget, save):
    """The plan's cases, into report["rows"]; `save()` after each, so that a run cut short keeps its rows."""
    for case in plan_cases(args, tasks):
        if budget.spent():
            row = dict(case, tokens=case["batch"] * case["seq_len"], status="skipped (time budget)")
        elif args.device == "cpu" and not args.in_process:
            row = run_case_in_subprocess(case, args.device, args.dtype, args.warmup, args.steps, args.threads)
        else:
            row = run_case(case, args.device, args.dtype, args.warmup, args.steps)
        report["rows"].append(row)
        speed = (
            f"{row['tokens_per_s']:>12,.0f} tok/s  {gib(row['peak_mem_bytes'])} GiB"
            if row["status"] == "ok"
            else row["status"]
        )
        print(f"{case['task']:>9} {case['seq_len']:>6} x{case['batch']:<3} {case['impl']:<24} {speed}", flush=True)
        save()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, 1 warm-up + 2 steps: checks every path")
    parser.add_argument(
        "--dtype", choices=["fp32", "bf16", "fp16"], help="autocast dtype (default: bf16 on cuda, fp32 on cpu)"
    )
    parser.add_argument("--impls", nargs="*", choices=list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS))
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), help="only the plan's cases of these tasks")
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--overhead-rounds", type=int, help="rounds of the wrapper-overhead check (0: skip it)")
    parser.add_argument("--profile-steps", type=int, default=0, help="also profile this many steps per overhead model")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument(
        "--in-process", action="store_true", help="on CPU, run cases in this process (no peak RSS per case)"
    )
    parser.add_argument("--time-budget", type=float, default=float("inf"), help="seconds; later cases are skipped")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", type=Path, help="rewrite the .md and .png of a saved .json, measure nothing")
    args = parser.parse_args(argv)
    plan = "dry-run" if args.dry_run else args.device
    warmup, steps, rounds = STEP_DEFAULTS[plan]
    args.plan = plan
    args.dtype = args.dtype or default_dtype(args.device)
    args.warmup = warmup if args.warmup is None else args.warmup
    args.steps = steps if args.steps is None else args.steps
    args.overhead_rounds = rounds if args.overhead_rounds is None else args.overhead_rounds
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        report = json.loads(args.report_only.read_text())
        write_reports(report, args.report_only.with_suffix(""))
        return report
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch; run on a machine with one, or without --device cuda")
    # On a GPU every case runs in this process, and each compiles FlexAttention for its own shapes: more variants
    # than dynamo's default limit of 8, past which it would run FlexAttention unfused.
    torch._dynamo.config.recompile_limit = 64

    budget = TimeBudget(args.time_budget)
    tasks = set(args.tasks or TASKS)
    report = dict(
        device=args.device,
        plan=args.plan,
        machine=machine_and_versions(args.device, args.threads),
        settings=dict(
            dtype=args.dtype,
            warmup=args.warmup,
            steps=args.steps,
            overhead_rounds=args.overhead_rounds,
            isolated_processes=args.device == "cpu" and not args.in_process,
            optimizer="AdamW(lr=1e-4)",
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
            load_average_at_start=load_average(),
            omp_wait_policy=os.environ.get("OMP_WAIT_POLICY"),
        ),
        command=" ".join([Path(sys.executable).name, *sys.argv]) if argv is None else f"main({argv})",
        overhead=[],
        rows=[],
    )

    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"train_step_{'dry_run' if args.dry_run else args.device}"
    try:
        if args.overhead_rounds:
            run_overhead_checks(args, tasks, report, budget)
        run_cases(args, tasks, report, budget, save=lambda: write_json(stem.with_suffix(".json"), report))
    except KeyboardInterrupt:  # benchmarks/run_gpu.sh's time limit (SIGINT): report what was measured
        report["interrupted"] = True
        print("interrupted: reporting what was measured so far", flush=True)
    report["elapsed_s"] = round(budget.elapsed(), 1)
    report["settings"]["load_average_at_end"] = load_average()
    write_json(stem.with_suffix(".json"), report)
    write_reports(report, stem)
    print(f"wrote {stem}.json/.md/.png in {report['elapsed_s']} s")
    return report


if __name__ == "__main__":
    main()
