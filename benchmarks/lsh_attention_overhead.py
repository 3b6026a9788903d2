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
from functools import partial
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.profiling import profile_difference, profile_operators  # noqa: E402
from benchmarks.reports import profile_difference_table, spread_cell  # noqa: E402
from benchmarks.timing import alternate, ratio_spread, timed  # noqa: E402


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
    """One forward + backward: its `StepTime`."""
    qk, v, grad, rotary = inputs
    _, took = timed(lambda: module(qk, v, pos_emb=rotary)[0].backward(grad), device)
    qk.grad = v.grad = None
    return took


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
    steps = {name: partial(call, module, inputs, args.device) for name, module in modules.items()}
    wall, cpu = alternate(steps, warmup=2, rounds=args.rounds)
    times = cpu if args.device == "cpu" else wall
    ratios = ratio_spread(times["reformer-ko"], times["reformer-pytorch"])
    clock = "wall" if args.device == "cuda" else "CPU"
    print(
        f"{'causal' if args.causal else 'bidirectional'}, {args.batch} x {args.seq_len} x {args.dim}, "
        f"{args.hashes} hashes, forward + backward, {clock} ms: "
        + ", ".join(f"{name} {1000 * statistics.median(values):.2f}" for name, values in times.items())
    )
    print(f"reformer-ko / reformer-pytorch, median (IQR; range) of {args.rounds} rounds: {spread_cell(ratios)}")
    if args.profile:
        calls = max(args.rounds // 2, 1)
        ours, theirs = (
            profile_operators(steps[name], calls, args.device) for name in ("reformer-ko", "reformer-pytorch")
        )
        difference = profile_difference(ours, theirs, top=12)
        print("\n" + profile_difference_table(difference, "reformer-ko", "reformer-pytorch"))
    return times


if __name__ == "__main__":
    main()
