"""Two or more implementations of one case (benchmarks/models.py), stepped alternately in one process: the ratio
of each one's step time to the first one's, round by round. For changes too small for the table's separate runs on
a shared machine (other processes' load moves a case's time by 20% from one minute to the next).

    python benchmarks/ab_step.py reformer-ko reformer-ko-sparse --task mlm --seq-len 2048 --rounds 12
    python benchmarks/ab_step.py reformer-ko reformer-ko-flex --device cuda --task mlm --seq-len 4096 --batch 4

Each round runs one step of every implementation, the order rotating from round to round. On CPU the ratios are
of the process's CPU time per step, which other processes' load moves far less than wall time; on a GPU of wall
time after synchronising. Prints a Markdown table and writes ab_<impls>_<task>_<seq_len>x<batch>_<device>.json to
--out.
"""

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_and_versions  # noqa: E402
from benchmarks.models import IMPLEMENTATIONS  # noqa: E402
from benchmarks.reports import spread_cell, write_json  # noqa: E402
from benchmarks.timing import (  # noqa: E402
    add_case_arguments,
    alternate,
    case_runner,
    finish_case_arguments,
    milliseconds_spread,
    ratio_spread,
)


def compare(args):
    runners = {
        impl: case_runner(impl, args.task, args.seq_len, args.batch, args.device, args.dtype) for impl in args.impls
    }
    wall, cpu = alternate({impl: runner.step for impl, runner in runners.items()}, args.warmup, args.rounds)
    clock = cpu if args.device == "cpu" else wall
    baseline = clock[args.impls[0]]
    return dict(
        case=dict(task=args.task, seq_len=args.seq_len, batch=args.batch, dtype=args.dtype, device=args.device),
        clock="CPU time" if args.device == "cpu" else "wall time",
        rounds=args.rounds,
        machine=machine_and_versions(args.device, args.threads),
        step_ms={impl: milliseconds_spread(clock[impl]) for impl in args.impls},
        ratio_to_first={impl: ratio_spread(clock[impl], baseline) for impl in args.impls[1:]},
    )


def markdown(result):
    case = result["case"]
    first = next(iter(result["step_ms"]))
    lines = [
        f"{case['task']} {case['seq_len']:,} x {case['batch']}, {case['dtype']}, {case['device']}, "
        f"{result['rounds']} rounds; {result['clock']} per step",
        "",
        f"| implementation | ms per step: median (IQR) | ratio to {first}: median (IQR; min–max) |",
        "|---|---:|---:|",
    ]
    for impl, step in result["step_ms"].items():
        ratio = result["ratio_to_first"].get(impl)
        ratio_cell = spread_cell(ratio) if ratio else ""
        lines.append(f"| {impl} | {spread_cell(step, digits=1, with_range=False)} | {ratio_cell} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("impls", nargs="+", choices=list(IMPLEMENTATIONS), help="the first is the baseline")
    add_case_arguments(parser, seq_len=512)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    if len(args.impls) < 2:
        parser.error("give at least two implementations: the baseline first, then what to compare with it")
    return finish_case_arguments(args)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = compare(args)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "_vs_".join(args.impls)
    write_json(args.out / f"ab_{name}_{args.task}_{args.seq_len}x{args.batch}_{args.device}.json", result)
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
