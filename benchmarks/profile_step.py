"""Where one training step's time goes: torch.profiler over a few steps of one case (an implementation of
benchmarks/models.py at a length and batch), by part of the model and by operator (on a GPU: by kernel).

    python benchmarks/profile_step.py --impl reformer-ko --task mlm --seq-len 2048 --batch 1
    python benchmarks/profile_step.py --device cuda --impl reformer-ko-flex --task mlm --seq-len 4096 --batch 4

The parts are profiler ranges around reformer-pytorch's modules (reformer-ko subclasses them, so the same ranges
cover both): the LSH attention function (hash, sort, attend, unsort, combine), the rest of the attention layer
(projections, head split/merge), the feed-forward, and each reversible block's backward (which recomputes that
block's forward). Forward ranges also run inside that recomputation; the backward kernels of the embeddings, the
LM head and the loss fall under "rest". Writes profile_<impl>_<task>_<seq_len>x<batch>_<device>.json and a Markdown
table next to it, in --out.
"""

import argparse
import importlib
import sys
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.models import IMPLEMENTATIONS  # noqa: E402
from benchmarks.reports import write_results  # noqa: E402
from benchmarks.timing import add_case_arguments, case_runner, finish_case_arguments  # noqa: E402

# Profiler range name -> (module of reformer-pytorch, class, method): every instance of the class or a subclass.
PARTS = {
    "part: LSH attention function": ("reformer_pytorch.reformer_pytorch", "LSHAttention", "forward"),
    "part: attention layer (incl. LSH)": ("reformer_pytorch.reformer_pytorch", "LSHSelfAttention", "forward"),
    "part: feed-forward": ("reformer_pytorch.reformer_pytorch", "FeedForward", "forward"),
    "part: reversible block backward": ("reformer_pytorch.reversible", "ReversibleBlock", "backward_pass"),
}


def in_range(label, method):
    def wrapped(*args, **kwargs):
        with record_function(label):
            return method(*args, **kwargs)

    return wrapped


def add_part_ranges(model):
    """Wrap each PARTS method of the model's modules (as instance attributes) in a profiler range."""
    for label, (module_name, class_name, method_name) in PARTS.items():
        cls = getattr(importlib.import_module(module_name), class_name)
        for module in model.modules():
            if isinstance(module, cls):
                setattr(module, method_name, in_range(label, getattr(module, method_name)))


def profile_case(args):
    runner = case_runner(args.impl, args.task, args.seq_len, args.batch, args.device, args.dtype)
    add_part_ranges(runner.model)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    for _ in range(args.warmup):
        runner.step()
    with profile(activities=activities) as profiler:
        step_s = [runner.step().wall_s for _ in range(args.steps)]
    on_device = args.device == "cuda"
    events = profiler.key_averages()

    def per_step_ms(event, total):
        if on_device:
            value = event.device_time_total if total else event.self_device_time_total
        else:
            value = event.cpu_time_total if total else event.self_cpu_time_total
        return value / 1000 / args.steps

    # The parts: their CPU-side ranges (on a GPU, with the time of the kernels launched inside them; the GPU-side
    # copy of a range spans idle gaps too). The operators: on a GPU the kernels themselves (each kernel's time would
    # otherwise count twice: in the kernel's event and in the operator that launched it), on CPU the operators.
    step_ms = 1000 * sum(step_s) / len(step_s)
    parts = {
        event.key: per_step_ms(event, total=True)
        for event in events
        if event.key.startswith("part: ") and event.device_type == DeviceType.CPU
    }
    timed_type = DeviceType.CUDA if on_device else DeviceType.CPU
    operators = sorted(
        (
            dict(name=event.key, ms=per_step_ms(event, total=False), calls=event.count / args.steps)
            for event in events
            if event.device_type == timed_type and not event.is_user_annotation and per_step_ms(event, total=False) > 0
        ),
        key=lambda row: -row["ms"],
    )
    return dict(
        case=dict(impl=args.impl, task=args.task, seq_len=args.seq_len, batch=args.batch, dtype=args.dtype),
        device=args.device,
        gpu=torch.cuda.get_device_name() if on_device else None,
        torch=torch.__version__,
        clock="GPU kernel" if on_device else "CPU (self time)",
        steps=args.steps,
        step_ms=step_ms,
        operators_ms=sum(row["ms"] for row in operators),
        parts=parts,
        operators=operators[: args.top],
    )


def markdown(result):
    case = result["case"]
    lines = [
        f"## Profile: {case['impl']}, {case['task']} {case['seq_len']:,} x {case['batch']}, {case['dtype']}, "
        f"{result['gpu'] or result['device']}, torch {result['torch']}",
        "",
        f"Step {result['step_ms']:.1f} ms (mean of {result['steps']} profiled steps; the profiler adds overhead); "
        f"operators' {result['clock']} time {result['operators_ms']:.1f} ms per step.",
        "",
        "| part | ms per step (incl. nested) | share of operator time |",
        "|---|---:|---:|",
    ]
    for name, ms in sorted(result["parts"].items(), key=lambda item: -item[1]):
        lines.append(f"| {name[len('part: '):]} | {ms:.2f} | {ms / result['operators_ms']:.1%} |")
    lines += ["", "| operator | self ms per step | calls per step | share |", "|---|---:|---:|---:|"]
    for row in result["operators"]:
        name = row["name"] if len(row["name"]) <= 90 else row["name"][:87] + "..."
        lines.append(f"| `{name}` | {row['ms']:.2f} | {row['calls']:g} | {row['ms'] / result['operators_ms']:.1%} |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=list(IMPLEMENTATIONS), default="reformer-ko")
    add_case_arguments(parser, seq_len=2048)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25, help="operators listed")
    return finish_case_arguments(parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result = profile_case(args)
    stem = args.out / f"profile_{args.impl}_{args.task}_{args.seq_len}x{args.batch}_{args.device}"
    write_results(stem, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
