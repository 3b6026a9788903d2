"""Two or more train_step.py implementations of one case, stepped alternately in one process: the ratio of each
one's step time to the first one's, round by round. For changes too small for the table's separate runs on a
shared machine (other processes' load moves a case's time by 20% from one minute to the next).

    python benchmarks/ab_step.py reformer-ko reformer-ko-sparse --task mlm --seq-len 2048 --rounds 12
    python benchmarks/ab_step.py reformer-ko reformer-ko-flex --device cuda --task mlm --seq-len 4096 --batch 4

Each round runs one step of every implementation, the order rotating from round to round. On CPU the ratios are
of the process's CPU time per step (see train_step.py), on a GPU of wall time after synchronising. Prints a
markdown table and writes ab_<impls>_<task>_<seq_len>x<batch>_<device>.json to --out.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step  # noqa: E402


def compare(args):
    trainers = {
        impl: train_step.case_trainer(impl, args.task, args.seq_len, args.batch, args.device, args.dtype)
        for impl in args.impls
    }
    wall, cpu = train_step.alternate(trainers, args.warmup, args.rounds)
    clock = cpu if args.device == "cpu" else wall
    baseline = clock[args.impls[0]]
    return dict(
        case=dict(task=args.task, seq_len=args.seq_len, batch=args.batch, dtype=args.dtype, device=args.device),
        clock="CPU time" if args.device == "cpu" else "wall time",
        rounds=args.rounds,
        machine=train_step.machine_and_versions(args.device, args.threads),
        step_ms={impl: train_step.spread([1000 * t for t in clock[impl]]) for impl in args.impls},
        ratio_to_first={
            impl: train_step.spread([ours / theirs for ours, theirs in zip(clock[impl], baseline, strict=True)])
            for impl in args.impls[1:]
        },
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
        r = result["ratio_to_first"].get(impl)
        ratio = f"{r['median']:.3f} ({r['q1']:.3f}–{r['q3']:.3f}; {r['min']:.3f}–{r['max']:.3f})" if r else ""
        lines.append(f"| {impl} | {step['median']:.1f} ({step['q1']:.1f}–{step['q3']:.1f}) | {ratio} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("impls", nargs="+", choices=list(train_step.IMPLEMENTATIONS), help="the first is the baseline")
    train_step.add_case_arguments(parser, seq_len=512)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    if len(args.impls) < 2:
        parser.error("give at least two implementations: the baseline first, then what to compare with it")
    return train_step.finish_case_arguments(args)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = compare(args)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "_vs_".join(args.impls)
    path = args.out / f"ab_{name}_{args.task}_{args.seq_len}x{args.batch}_{args.device}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
