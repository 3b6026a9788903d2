"""Generation speed: tokens/s of greedy decoding after prompts of several lengths for reformer-ko with its LSH
cache, reformer-ko recomputing the prefix at every step (`use_cache=False`), and transformers'
`ReformerModelWithLMHead` with its own LSH cache, the same model size, side by side in one run (issue 13).

    python benchmarks/generation.py                  # CPU, 1 thread: prompts of 512, 2,048 and 4,096 tokens, 64 new
    python benchmarks/generation.py --device cuda
    python benchmarks/generation.py --dry-run        # tiny sizes, every code path in seconds

The model: 4 layers x 256 wide, 4 heads, 4 hashes, buckets of 64, a 22,000-token vocabulary, axial positions, a
context that holds the longest prompt and the new tokens (both models alike), random weights (the speed does not
depend on them). Each generate() call is timed whole, the prompt's forward included: tokens/s = new tokens /
seconds. Within the same call, the time to the first token (the prompt's forward) and the decoding rate after it;
beside them the bytes reformer-ko's cache holds, and how many tokens the cached and uncached runs share. Each round
runs every implementation once, in rotating order (recomputing the prefix, far slower, in rounds of its own); on
CPU the process's CPU time is recorded beside the wall time (other processes' load inflates it far less).
"""

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.machine import load_average, machine_and_versions  # noqa: E402
from benchmarks.models import Task, build_hf_reformer, reformer_ko_config  # noqa: E402
from benchmarks.reports import RESULTS, write_results  # noqa: E402
from benchmarks.timing import StepTime, alternate, synchronize, timed  # noqa: E402

TASK = Task("generation", dim=256, depth=4, heads=4, causal=True)
TINY_TASK = Task("tiny-generation", dim=32, depth=2, heads=2, causal=True, vocab=500, bucket=16, hashes=2)
IMPLEMENTATIONS = ("reformer-ko cached", "reformer-ko uncached", "transformers Reformer cached")


def build_models(task, context, device, dtype):
    """reformer-ko's causal LM and transformers' Reformer of the same size, both with `context` positions."""
    from reformer_ko import ReformerKoForCausalLM

    torch.manual_seed(0)
    ours = ReformerKoForCausalLM(reformer_ko_config(task, context, position_embedding_type="axial"))
    theirs, _ = build_hf_reformer(task, context)
    return {"reformer-ko": ours.to(device, dtype).eval(), "transformers": theirs.to(device, dtype).eval()}


class FirstTokenClock(StoppingCriteria):
    """Never stops generation; notes the clocks when it is first asked, right after the first new token."""

    def __init__(self, device):
        self.device, self.first = device, None

    def __call__(self, input_ids, scores, **kwargs):
        if self.first is None:
            synchronize(self.device)
            self.first = StepTime(time.perf_counter(), time.process_time())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def generate(model, prompt, new_tokens, use_cache, clock=None):
    """Greedy decoding of exactly `new_tokens` tokens."""
    with torch.no_grad():
        return model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
            use_cache=use_cache,
            return_dict_in_generate=True,
            stopping_criteria=StoppingCriteriaList([clock] if clock else []),
        )


def cache_bytes(output):
    """The bytes reformer-ko's cache holds after generating (its allocated capacity), or None for another cache."""
    cache = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
    return cache.memory_bytes() if hasattr(cache, "memory_bytes") else None


def measure_prompt(models, prompt_length, args):
    """Every implementation on one random prompt: its rows (times per round, tokens/s, the first token's time)."""
    generator = torch.Generator().manual_seed(prompt_length)
    prompt = torch.randint(1, args.task.vocab, (1, prompt_length), generator=generator).to(args.device)
    runs = {
        "reformer-ko cached": (models["reformer-ko"], True),
        "reformer-ko uncached": (models["reformer-ko"], False),
        "transformers Reformer cached": (models["transformers"], True),
    }
    outputs, first_token = {}, {name: [] for name in runs}

    def step(name):
        model, use_cache = runs[name]
        clock = FirstTokenClock(args.device)
        start = StepTime(time.perf_counter(), time.process_time())
        outputs[name], took = timed(partial(generate, model, prompt, args.new_tokens, use_cache, clock), args.device)
        first_token[name].append(StepTime(*(first - began for first, began in zip(clock.first, start))))
        return took

    cached = [name for name in runs if runs[name][1]]
    wall, cpu = alternate({name: partial(step, name) for name in cached}, warmup=0, rounds=args.rounds)
    recomputing = alternate({"reformer-ko uncached": partial(step, "reformer-ko uncached")}, 0, args.uncached_rounds)
    wall.update(recomputing[0])
    cpu.update(recomputing[1])

    rows = []
    for name in runs:
        seconds, cpu_seconds = statistics.median(wall[name]), statistics.median(cpu[name])
        first_seconds = statistics.median(took.wall_s for took in first_token[name])
        rows.append(
            dict(
                prompt=prompt_length,
                impl=name,
                new_tokens=args.new_tokens,
                rounds=len(wall[name]),
                wall_s=seconds,
                wall_s_all=wall[name],
                cpu_s=cpu_seconds,
                cpu_s_all=cpu[name],
                tokens_per_s=args.new_tokens / seconds,
                tokens_per_cpu_s=args.new_tokens / cpu_seconds,
                first_token_s=first_seconds,
                first_token_cpu_s=statistics.median(took.cpu_s for took in first_token[name]),
                decoding_tokens_per_s=statistics.median(
                    (args.new_tokens - 1) / (total - first.wall_s)
                    for total, first in zip(wall[name], first_token[name], strict=True)
                ),
                cache_bytes=cache_bytes(outputs[name]) if name == "reformer-ko cached" else None,
            )
        )
    same = outputs["reformer-ko cached"].sequences == outputs["reformer-ko uncached"].sequences
    rows[0]["identical_to_uncached"] = same[0, prompt_length:].float().mean().item()
    return rows


def warm_up(models, args):
    """One short generation per model: first-call costs (allocations, lazy imports) out of the timed rounds."""
    prompt = torch.randint(1, args.task.vocab, (1, 2 * args.task.bucket)).to(args.device)
    for model in models.values():
        generate(model, prompt, 2, True)


def markdown_report(report):
    settings, machine = report["settings"], report["machine"]
    task = TASK if not settings["dry_run"] else TINY_TASK
    on_cpu = report["device"] == "cpu"
    lines = [
        f"## Generation, {report['device']} ({machine.get('gpu') or machine['processor']})",
        "",
        f"{task.depth} layers x {task.dim} wide, {task.heads} heads, {task.hashes} hashes, buckets of {task.bucket}, "
        f"vocabulary {task.vocab:,}, {settings['dtype']}, greedy, {settings['new_tokens']} new tokens, median of "
        f"{settings['rounds']} round(s) ({settings['uncached_rounds']} for `uncached`), torch {machine['torch']}, "
        f"transformers {machine['transformers']}, "
        f"{machine['torch_threads']} thread(s), load average {report['load_average']}. Tokens/s: new tokens per "
        "second of the whole generate() call, the prompt's forward included.",
        "",
    ]
    header = ["prompt", "implementation", "generate s", "tokens/s"]
    header += ["CPU s", "tokens per CPU-s"] if on_cpu else []
    header += ["first token s", "decoding tokens/s", "÷ transformers", "÷ uncached", "cache MiB"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---:|---|" + "---:|" * (len(header) - 2))
    clock = "tokens_per_cpu_s" if on_cpu else "tokens_per_s"
    for prompt in dict.fromkeys(row["prompt"] for row in report["rows"]):
        group = {row["impl"]: row for row in report["rows"] if row["prompt"] == prompt}
        for name, row in group.items():
            cells = [f"{prompt:,}", name, f"{row['wall_s']:.2f}", f"{row['tokens_per_s']:.1f}"]
            cells += [f"{row['cpu_s']:.2f}", f"{row['tokens_per_cpu_s']:.1f}"] if on_cpu else []
            cells += [f"{row['first_token_s']:.2f}", f"{row['decoding_tokens_per_s']:.1f}"]
            if name == "reformer-ko cached":
                cells.append(f"{row[clock] / group['transformers Reformer cached'][clock]:.2f}")
                cells.append(f"{row[clock] / group['reformer-ko uncached'][clock]:.1f}")
                cells.append(f"{row['cache_bytes'] / 2**20:.1f}")
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    ratios = "per CPU-second" if on_cpu else "per second"
    lines += [
        "",
        f"Ratios of tokens {ratios}. Cached and uncached reformer-ko chose the same token at "
        + ", ".join(
            f"{row['identical_to_uncached']:.0%} of the steps after {row['prompt']:,} tokens"
            for row in report["rows"]
            if row["impl"] == "reformer-ko cached"
        )
        + " (random weights: near-ties are common, so this is a plumbing check, not the quality measurement).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--prompts", type=int, nargs="+", default=[512, 2048, 4096])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the cached implementations")
    parser.add_argument("--uncached-rounds", type=int, default=1, help="rounds of recomputing the prefix")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--dry-run", action="store_true", help="a tiny model, prompts of 32 and 64, 4 new tokens")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/generation_DEVICE")
    args = parser.parse_args(argv)
    args.task = TASK
    if args.dry_run:
        args.task, args.prompts, args.new_tokens, args.rounds = TINY_TASK, [32, 64], 4, 1
    torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]

    models = build_models(args.task, max(args.prompts) + args.new_tokens, args.device, dtype)
    warm_up(models, args)
    rows = []
    for prompt_length in args.prompts:
        rows += measure_prompt(models, prompt_length, args)
        speeds = ", ".join(f"{row['impl']} {row['tokens_per_s']:.1f} tok/s" for row in rows[-3:])
        print(f"prompt {prompt_length}: {speeds}", flush=True)
    report = dict(
        device=args.device,
        machine=machine_and_versions(args.device, args.threads),
        load_average=load_average(),
        settings=dict(
            dry_run=args.dry_run,
            dtype=args.dtype,
            new_tokens=args.new_tokens,
            rounds=args.rounds,
            uncached_rounds=args.uncached_rounds,
            prompts=args.prompts,
        ),
        rows=rows,
    )
    out = args.out or RESULTS / f"generation_{args.device}"
    stem = out / f"generation_{args.device}{'_dry_run' if args.dry_run else ''}"
    write_results(stem, report, markdown_report(report))
    return report


if __name__ == "__main__":
    main()
