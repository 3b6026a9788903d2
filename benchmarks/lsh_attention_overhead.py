"""reformer-ko's padding-safe LSH attention beside reformer-pytorch's own, alone: forward + backward on the same
inputs, interleaved, and the operators where they differ.

    python benchmarks/lsh_attention_overhead.py                 # 8 x 512 tokens x 64 dims (MLM 512x6x8 at batch 1)
    python benchmarks/lsh_attention_overhead.py --causal --profile
    python benchmarks/lsh_attention_overhead.py --device cuda --batch 32 --seq-len 4096

This is where train_step.py's wrapper-overhead check places reformer-ko's extra time on CPU (swapping
reformer-pytorch's attention back into reformer-ko removes it). Each round times one call of each, in alternating
order; the ratio per round is reported as median, quartiles and range. On CPU the clock is the process's CPU time,
which other processes' load inflates far less than wall time; on a GPU it is wall time after synchronising.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(args):
    from reformer_pytorch.reformer_pytorch import FixedPositionalEmbedding, LSHAttention

    from reformer_ko.lsh_attention import PaddingSafeLSHAttention

    common = dict(bucket_size=args.bucket, n_hashes=args.hashes, causal=args.causal)
    modules = {
        "reformer-pytorch": LSHAttention(**common),
        "reformer-ko": PaddingSafeLSHAttention(num_buckets=args.seq_len // args.bucket, hash_seed=0, **common),
    }
    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, args.seq_len, args.dim)
    qk, v, grad = (torch.randn(shape, generator=generator).to(args.device) for _ in range(3))
    qk.requires_grad_()
    v.requires_grad_()
    rotary = FixedPositionalEmbedding(args.dim)(torch.zeros(1, args.seq_len, args.dim)).to(args.device)
    return modules, (qk, v, grad, rotary)


def call(module, inputs, device):
    """One forward + backward; seconds of CPU time (on CPU) or wall time (on a GPU)."""
    qk, v, grad, rotary = inputs
    clock = time.perf_counter if device == "cuda" else time.process_time
    if device == "cuda":
        torch.cuda.synchronize()
    start = clock()
    out = module(qk, v, pos_emb=rotary)[0]
    out.backward(grad)
    if device == "cuda":
        torch.cuda.synchronize()
    qk.grad = v.grad = None
    return clock() - start


def profile(module, inputs, device, calls):
    """Self time per operator, ms per call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch_profile(activities=activities) as profiler:
        for _ in range(calls):
            call(module, inputs, device)
    key = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    return {event.key: (getattr(event, key) / 1000 / calls, event.count / calls) for event in profiler.key_averages()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=8, help="batch x heads")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--dim", type=int, default=64, help="head size")
    parser.add_argument("--bucket", type=int, default=64)
    parser.add_argument("--hashes", type=int, default=4)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also list the operators that differ most")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    modules, inputs = build(args)
    names = list(modules)
    for name in names:
        for _ in range(2):
            call(modules[name], inputs, args.device)
    times = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name in names[round_index % 2 :] + names[: round_index % 2]:
            times[name].append(call(modules[name], inputs, args.device))

    ratios = sorted(ours / theirs for ours, theirs in zip(times["reformer-ko"], times["reformer-pytorch"], strict=True))
    quartiles = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    clock = "wall" if args.device == "cuda" else "CPU"
    print(
        f"{'causal' if args.causal else 'bidirectional'}, {args.batch} x {args.seq_len} x {args.dim}, "
        f"{args.hashes} hashes, forward + backward, {clock} ms: "
        + ", ".join(f"{name} {1000 * statistics.median(values):.2f}" for name, values in times.items())
    )
    print(
        f"reformer-ko / reformer-pytorch: median {statistics.median(ratios):.3f} "
        f"(IQR {quartiles[0]:.3f}–{quartiles[2]:.3f}; range {ratios[0]:.3f}–{ratios[-1]:.3f}; {args.rounds} rounds)"
    )
    if args.profile:
        ours, theirs = (profile(modules[name], inputs, args.device, max(args.rounds // 2, 1)) for name in names[::-1])
        rows = sorted(set(ours) | set(theirs), key=lambda op: -abs(ours.get(op, (0, 0))[0] - theirs.get(op, (0, 0))[0]))
        print("\n| operator | reformer-ko ms | reformer-pytorch ms | difference | calls (ko / rp) |")
        print("|---|---:|---:|---:|---:|")
        for op in rows[:12]:
            (a, calls_a), (b, calls_b) = ours.get(op, (0, 0)), theirs.get(op, (0, 0))
            print(f"| {op} | {a:.2f} | {b:.2f} | {a - b:+.2f} | {calls_a:.0f} / {calls_b:.0f} |")
    return times


if __name__ == "__main__":
    main()
