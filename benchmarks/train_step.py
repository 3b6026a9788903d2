"""Training-step throughput and peak memory: reformer-ko beside raw reformer-pytorch, transformers' Reformer and
BERT / GPT-2 with SDPA (flash) attention, at the same width, depth, heads and vocabulary.

    python benchmarks/train_step.py                    # CPU plan, fp32, every case in a fresh subprocess
    python benchmarks/train_step.py --device cuda      # GPU plan, bf16 autocast (see benchmarks/run_gpu.sh)
    python benchmarks/train_step.py --dry-run          # tiny sizes, every code path, under a minute on CPU

One step = forward + loss + backward + AdamW on random token ids; each case runs `--warmup` steps, then
`--steps` timed steps, and reports the median. Peak memory is `torch.cuda.max_memory_allocated` on a GPU and the
peak RSS of a fresh subprocess per case on CPU. An out-of-memory case is a row with status "oom".

Besides the table, the wrapper-overhead check builds raw `ReformerLM`, reformer-ko with its structure ("matched",
same weights), the same with reformer-pytorch's attention swapped back in, and reformer-ko, in one process, and
times them one step each per round in rotating order, so that a noisy machine slows all alike; the ratio of each
round is reported with its spread (on CPU also in CPU time, which other processes' load hardly moves).

Writes train_step_<device>.json (machine, versions, settings, every row), .md (tables with ratios) and .png (tokens/s
-- per CPU-second on CPU -- and peak memory against sequence length; skipped with a message when matplotlib is
missing) to `--out`. `--report-only FILE.json` rewrites the .md and .png of a saved run.
"""

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class Task:
    name: str
    dim: int
    depth: int
    heads: int
    causal: bool
    vocab: int = 22000
    bucket: int = 64
    hashes: int = 4


TASKS = {
    task.name: task
    for task in (
        Task("mlm", dim=512, depth=6, heads=8, causal=False),
        Task("clm", dim=768, depth=12, heads=12, causal=True),
        # CPU stand-in for the causal LM: GPT-3 Small's width and heads, a quarter of its depth.
        Task("clm-3l", dim=768, depth=3, heads=12, causal=True),
        Task("tiny-mlm", dim=32, depth=2, heads=2, causal=False, vocab=500, bucket=16, hashes=2),
        Task("tiny-clm", dim=32, depth=2, heads=2, causal=True, vocab=500, bucket=16, hashes=2),
    )
}

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

# reformer-ko's variants, each as ReformerKoConfig overrides: adding one is a line here. The attention backends
# (eager, flex_attention), the masked LM's sparse prediction (the LM head only at the masked positions), and
# irreversible layers (no recomputation in the backward, activations kept: the speed and memory of reversibility).
REFORMER_KO_VARIANTS = {
    "reformer-ko": {},
    "reformer-ko-irreversible": {"reverse_thres": 2**30},
    "reformer-ko-sparse": {"sparse_prediction": True},
    "reformer-ko-flex": {"attn_implementation": "flex_attention"},
    "reformer-ko-flex-sparse": {"attn_implementation": "flex_attention", "sparse_prediction": True},
}
# Variants that run natively only on a GPU (elsewhere they run the eager attention: the CPU plan leaves them out),
# and those that differ from "reformer-ko" only for a masked LM.
GPU_ONLY = {"reformer-ko-flex", "reformer-ko-flex-sparse"}
MLM_ONLY = {"reformer-ko-sparse", "reformer-ko-flex-sparse"}


# Models ----------------------------------------------------------------------------------------------------------


def padded_length(task, seq_len):
    multiple = 2 * task.bucket
    return math.ceil(seq_len / multiple) * multiple


def mlm_or_clm_loss(logits, labels, causal):
    if causal:
        logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1))


def builtin_loss(model, input_ids, labels):
    return model(input_ids=input_ids, labels=labels).loss


def reformer_ko_config(task, seq_len, **overrides):
    from reformer_ko import ReformerKoConfig

    return ReformerKoConfig(
        vocab_size=task.vocab,
        hidden_size=task.dim,
        num_hidden_layers=task.depth,
        num_attention_heads=task.heads,
        max_position_embeddings=padded_length(task, seq_len),
        bucket_size=task.bucket,
        num_hashes=task.hashes,
        is_decoder=task.causal,
        **overrides,
    )


def build_reformer_ko(task, seq_len, overrides):
    """reformer-ko as a user builds it (tied LM head with its transform, segment embeddings, dropout 0.1)."""
    from reformer_ko import ReformerKoForCausalLM, ReformerKoForMaskedLM

    head = ReformerKoForCausalLM if task.causal else ReformerKoForMaskedLM
    return head(reformer_ko_config(task, seq_len, **overrides)), builtin_loss


def build_reformer_ko_matched(task, seq_len):
    """reformer-ko with raw ReformerLM's structure where it can have it: no segment embeddings, no embedding dropout,
    an untied decoder straight after the final LayerNorm (the LM-head transform is replaced here, not in the model).
    What stays different is the padding-safe attention itself."""
    model, loss = build_reformer_ko(
        task, seq_len, dict(type_vocab_size=0, tie_word_embeddings=False, hidden_dropout_prob=0.0)
    )
    model.lm_head.dense = model.lm_head.activation = model.lm_head.layer_norm = nn.Identity()
    return model, loss


def build_reformer_ko_matched_rp_attention(task, seq_len):
    """`reformer-ko-matched` with reformer-pytorch's own `LSHAttention` swapped back in: what is left of the
    overhead is the wrapper (model code and reversible sequence), not the padding-safe attention."""
    from reformer_pytorch.reformer_pytorch import LSHAttention, LSHSelfAttention

    model, loss = build_reformer_ko_matched(task, seq_len)
    for module in model.modules():
        if isinstance(module, LSHSelfAttention):
            module.lsh_attn = LSHAttention(bucket_size=task.bucket, n_hashes=task.hashes, causal=task.causal)
    return model, loss


def build_reformer_pytorch(task, seq_len):
    """Raw `reformer_pytorch.ReformerLM`: rotary positions, no dropout, untied output layer (its defaults), with
    reformer-ko's chunking (ff_chunks 1, attn_chunks 1)."""
    from reformer_pytorch import ReformerLM

    model = ReformerLM(
        num_tokens=task.vocab,
        dim=task.dim,
        depth=task.depth,
        max_seq_len=padded_length(task, seq_len),
        heads=task.heads,
        dim_head=task.dim // task.heads,
        bucket_size=task.bucket,
        n_hashes=task.hashes,
        ff_chunks=1,
        attn_chunks=1,
        causal=task.causal,
    )

    def loss(model, input_ids, labels):
        return mlm_or_clm_loss(model(input_ids), labels, task.causal)

    return model, loss


def build_hf_reformer(task, seq_len):
    """transformers' `ReformerForMaskedLM` / `ReformerModelWithLMHead`: every layer LSH, same chunk (= bucket),
    hashes and buckets as reformer-pytorch, GELU feed-forward 4x, axial positions whose shape multiplies to the
    sequence length (transformers requires that in training), no dropout."""
    from transformers import ReformerConfig, ReformerForMaskedLM, ReformerModelWithLMHead

    length = padded_length(task, seq_len)
    config = ReformerConfig(
        vocab_size=task.vocab,
        hidden_size=task.dim,
        num_attention_heads=task.heads,
        attention_head_size=task.dim // task.heads,
        attn_layers=["lsh"] * task.depth,
        feed_forward_size=4 * task.dim,
        hidden_act="gelu",
        lsh_attn_chunk_length=task.bucket,
        num_hashes=task.hashes,
        num_buckets=length // task.bucket,
        axial_pos_embds=True,
        axial_pos_shape=(length // task.bucket, task.bucket),
        axial_pos_embds_dim=(task.dim // 4, task.dim - task.dim // 4),
        max_position_embeddings=length,
        hidden_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0,
        is_decoder=task.causal,
        pad_token_id=0,
        eos_token_id=None,
    )
    head = ReformerModelWithLMHead if task.causal else ReformerForMaskedLM
    return head(config), builtin_loss


def build_sdpa(task, seq_len):
    """`BertForMaskedLM` / `GPT2LMHeadModel`, `attn_implementation="sdpa"` (flash attention on a GPU), no dropout."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, BertConfig, GPT2Config

    if task.causal:
        config = GPT2Config(
            vocab_size=task.vocab,
            n_embd=task.dim,
            n_layer=task.depth,
            n_head=task.heads,
            n_positions=seq_len,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=task.vocab - 1,
            eos_token_id=task.vocab - 1,
        )
        model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    else:
        config = BertConfig(
            vocab_size=task.vocab,
            hidden_size=task.dim,
            num_hidden_layers=task.depth,
            num_attention_heads=task.heads,
            intermediate_size=4 * task.dim,
            max_position_embeddings=seq_len,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
        model = AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa")
    if model.config._attn_implementation != "sdpa":
        raise RuntimeError(f"asked for sdpa attention, got {model.config._attn_implementation!r}")
    return model, builtin_loss


IMPLEMENTATIONS = {
    **{name: partial(build_reformer_ko, overrides=overrides) for name, overrides in REFORMER_KO_VARIANTS.items()},
    "reformer-ko-matched": build_reformer_ko_matched,
    "reformer-pytorch": build_reformer_pytorch,
    "hf-reformer": build_hf_reformer,
    "sdpa": build_sdpa,
}


def copy_into_reformer_pytorch(matched, raw):
    """Load a `reformer-ko-matched` model's weights into a raw `ReformerLM` of the same configuration."""
    renames = [
        ("reformer.embeddings.word_embeddings.", "token_emb."),
        ("reformer.rotary.", "layer_pos_emb."),
        ("reformer.encoder.", "reformer."),
        ("reformer.layer_norm.", "norm."),
        ("lm_head.decoder.", "out.1."),
    ]
    state = {}
    for name, tensor in matched.state_dict().items():
        for old, new in renames:
            if name.startswith(old):
                state[new + name[len(old) :]] = tensor
                break
    raw.load_state_dict(state, strict=True)


# One training step -----------------------------------------------------------------------------------------------


def make_batch(task, seq_len, batch, device, seed=0):
    """Random ids (never 0, the padding id) and labels: every next token for a causal LM, 15% of positions for MLM."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, task.vocab, (batch, seq_len), generator=generator)
    labels = input_ids.clone()
    if not task.causal:
        labels[torch.rand(batch, seq_len, generator=generator) >= 0.15] = -100
    return input_ids.to(device), labels.to(device)


def autocast_context(device, dtype):
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype])


class Trainer:
    """A model, its AdamW and its loss: `step()` runs one training step and returns its wall time in seconds; the
    process's CPU time for it (all threads) is left in `last_cpu_s`: on a shared CPU, other processes' load lengthens
    the wall time far more than the CPU time."""

    def __init__(self, model, loss_fn, batch, device, dtype):
        self.model = model.to(device).train()
        self.loss_fn = loss_fn
        self.batch = batch
        self.device = device
        self.dtype = dtype
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def synchronize(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def step(self):
        self.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.dtype):
            loss = self.loss_fn(self.model, *self.batch)
        loss.backward()
        self.optimizer.step()
        self.synchronize()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}")
        self.last_cpu_s = time.process_time() - cpu_start
        return time.perf_counter() - start


def case_trainer(impl, task_name, seq_len, batch_size, device, dtype):
    """The Trainer of one case: the implementation built with seed 0, on the case's fixed random batch."""
    task = TASKS[task_name]
    torch.manual_seed(0)
    model, loss_fn = IMPLEMENTATIONS[impl](task, seq_len)
    return Trainer(model, loss_fn, make_batch(task, seq_len, batch_size, device), device, dtype)


def default_dtype(device):
    """The autocast dtype when none is asked for: bf16 on a GPU, none (fp32) on CPU."""
    return "bf16" if device == "cuda" else "fp32"


def add_case_arguments(parser, seq_len):
    """The options of the one-case scripts (ab_step.py, profile_step.py): device, task, length, batch, dtype,
    warm-up steps, threads, output folder. Call `finish_case_arguments` on what the parser returns."""
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--task", choices=list(TASKS), default="mlm")
    parser.add_argument("--seq-len", type=int, default=seq_len)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="default: bf16 on cuda, fp32 on cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")


def finish_case_arguments(args):
    args.dtype = args.dtype or default_dtype(args.device)
    return args


def rss_bytes(field="VmRSS"):
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), from /proc (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss_bytes():
    # Not getrusage's ru_maxrss: across fork + exec it keeps the parent's peak, so every case would report at
    # least the harness's own memory. VmHWM belongs to this process's address space alone.
    return rss_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def is_out_of_memory(error):
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def import_libraries():
    """Import every implementation's library up front, so that a case's memory is its model and step."""
    import reformer_ko  # noqa: F401
    import reformer_pytorch  # noqa: F401
    from transformers import BertForMaskedLM, GPT2LMHeadModel, ReformerForMaskedLM, ReformerModelWithLMHead  # noqa: F401


def run_case(case, device, dtype, warmup, steps):
    """Build, warm up and time one (task, length, batch, implementation); returns the row as a dict."""
    import_libraries()
    row = dict(case, tokens=case["batch"] * case["seq_len"], status="ok")
    trainer = None
    try:
        if device == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            row["base_mem_bytes"] = torch.cuda.memory_allocated()
        else:
            row["base_mem_bytes"] = rss_bytes()
        trainer = case_trainer(case["impl"], case["task"], case["seq_len"], case["batch"], device, dtype)
        row["params"] = sum(parameter.numel() for parameter in trainer.model.parameters())
        for _ in range(warmup):
            trainer.step()
        times, cpu_times = [], []
        for _ in range(steps):
            times.append(trainer.step())
            cpu_times.append(trainer.last_cpu_s)
        median = statistics.median(times)
        row.update(
            step_ms=1000 * median,
            step_ms_min=1000 * min(times),
            step_ms_max=1000 * max(times),
            step_ms_all=[round(1000 * t, 3) for t in times],
            cpu_ms=1000 * statistics.median(cpu_times),
            tokens_per_s=row["tokens"] / median,
        )
        if device == "cuda":
            row["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
            row["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        else:
            row["peak_mem_bytes"] = peak_rss_bytes()
    except Exception as error:  # noqa: BLE001 - an unattended GPU run must record a failing case and go on
        row["status"] = "oom" if is_out_of_memory(error) else f"error: {type(error).__name__}: {error}"[:300]
    finally:
        del trainer
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return row


def run_case_in_subprocess(case, args):
    """Run one case in a fresh Python process, so that its peak RSS is its own."""
    command = [
        sys.executable,
        __file__,
        "--device",
        args.device,
        "--dtype",
        args.dtype,
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--steps",
        str(args.steps),
        "--case",
        json.dumps(case),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        if line.startswith("ROW "):
            return json.loads(line[4:])
    row = dict(case, tokens=case["batch"] * case["seq_len"])
    if result.returncode in (-9, 137):
        row["status"] = "oom (process killed)"
    else:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        row["status"] = f"error: exit {result.returncode}: {tail}"[:300]
    return row


# Wrapper overhead ------------------------------------------------------------------------------------------------


def logits_difference(matched, raw, batch, seed=1):
    """Same weights, same random rotations (same seed): how far apart the two models' training-mode logits are."""
    input_ids = batch[0]
    with torch.no_grad():
        torch.manual_seed(seed)
        ours = matched(input_ids=input_ids).logits.float()
        torch.manual_seed(seed)
        theirs = raw(input_ids).float()
    return dict(
        max_abs=(ours - theirs).abs().max().item(),
        max_abs_logit=theirs.abs().max().item(),
        mean_abs=(ours - theirs).abs().mean().item(),
    )


def profile_steps(trainer, steps, device):
    """Self time per operator (ms per step) over `steps` profiled training steps."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            trainer.step()
    table = {}
    for event in profiler.key_averages():
        device_us = getattr(event, "self_device_time_total", 0) or 0
        table[event.key] = dict(
            cpu_ms=event.self_cpu_time_total / 1000 / steps,
            device_ms=device_us / 1000 / steps,
            calls=event.count / steps,
        )
    return table


def profile_difference(ours, theirs, top=15):
    """Operators where the two profiles differ most in self time (CPU, or the GPU's when there is one)."""
    key = "device_ms" if any(row["device_ms"] for row in ours.values()) else "cpu_ms"
    names = set(ours) | set(theirs)
    empty = dict(cpu_ms=0.0, device_ms=0.0, calls=0.0)
    rows = [
        dict(
            op=name,
            ours_ms=ours.get(name, empty)[key],
            theirs_ms=theirs.get(name, empty)[key],
            ours_calls=ours.get(name, empty)["calls"],
            theirs_calls=theirs.get(name, empty)["calls"],
        )
        for name in names
    ]
    for row in rows:
        row["diff_ms"] = row["ours_ms"] - row["theirs_ms"]
    rows.sort(key=lambda row: -abs(row["diff_ms"]))
    return dict(
        clock=key,
        ours_total_ms=sum(row["ours_ms"] for row in rows),
        theirs_total_ms=sum(row["theirs_ms"] for row in rows),
        top=rows[:top],
    )


def alternate(trainers, warmup, rounds):
    """Step every trainer once per round, rotating the order; the step times (s) per trainer, wall and CPU."""
    names = list(trainers)
    for name in names:
        for _ in range(warmup):
            trainers[name].step()
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall[name].append(trainers[name].step())
            cpu[name].append(trainers[name].last_cpu_s)
    return wall, cpu


def spread(values):
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
    return dict(median=statistics.median(ordered), q1=quartiles[0], q3=quartiles[2], min=ordered[0], max=ordered[-1])


# The wrapper-overhead check's models: raw ReformerLM, reformer-ko with its structure (same weights), the same with
# reformer-pytorch's attention (same weights: splits the overhead into wrapper and attention), and reformer-ko.
OVERHEAD_MODELS = {
    "reformer-ko-matched": build_reformer_ko_matched,
    "reformer-pytorch": build_reformer_pytorch,
    "reformer-ko-matched-rp-attn": build_reformer_ko_matched_rp_attention,
    "reformer-ko": partial(build_reformer_ko, overrides={}),
}


def measure_overhead(task_name, seq_len, batch_size, device, dtype, warmup, rounds, profile_steps_count=0):
    """Time reformer-ko, reformer-ko-matched and raw ReformerLM one step each per round, rotating the order."""
    task = TASKS[task_name]
    result = dict(task=task_name, seq_len=seq_len, batch=batch_size, dtype=dtype, rounds=rounds, status="ok")
    trainers = {}
    try:
        batch = make_batch(task, seq_len, batch_size, device)
        torch.manual_seed(0)
        models = {name: build(task, seq_len) for name, build in OVERHEAD_MODELS.items()}
        matched, raw = models["reformer-ko-matched"][0], models["reformer-pytorch"][0]
        copy_into_reformer_pytorch(matched, raw)
        models["reformer-ko-matched-rp-attn"][0].load_state_dict(matched.state_dict())
        trainers = {name: Trainer(model, loss, batch, device, dtype) for name, (model, loss) in models.items()}
        result["logits_difference_matched_vs_raw"] = logits_difference(matched, raw, batch)
        times, cpu_times = alternate(trainers, warmup, rounds)
        for clock, measured in (("", times), ("cpu_", cpu_times)):
            raw_times = measured["reformer-pytorch"]
            result[f"{clock}step_ms"] = {name: spread([1000 * t for t in values]) for name, values in measured.items()}
            result[f"{clock}ratio_to_reformer_pytorch"] = {
                name: spread([ours / theirs for ours, theirs in zip(values, raw_times, strict=True)])
                for name, values in measured.items()
                if name != "reformer-pytorch"
            }
        if profile_steps_count:
            profiles = {name: profile_steps(trainer, profile_steps_count, device) for name, trainer in trainers.items()}
            result["profile_matched_vs_raw"] = profile_difference(
                profiles["reformer-ko-matched"], profiles["reformer-pytorch"]
            )
            result["profile_matched_vs_rp_attn"] = profile_difference(
                profiles["reformer-ko-matched"], profiles["reformer-ko-matched-rp-attn"]
            )
    except Exception as error:  # noqa: BLE001
        result["status"] = "oom" if is_out_of_memory(error) else f"error: {type(error).__name__}: {error}"[:300]
    finally:
        trainers.clear()
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    return result


# The run ---------------------------------------------------------------------------------------------------------


def run_overhead_checks(args, tasks, report, over_budget):
    """The plan's wrapper-overhead checks, into report["overhead"]."""
    for task_name, seq_len, batch, *dtype in OVERHEAD_PLANS[args.plan]:
        if task_name not in tasks:
            continue
        dtype = dtype[0] if dtype else args.dtype
        if over_budget():
            report["overhead"].append(
                dict(
                    task=task_name,
                    seq_len=seq_len,
                    batch=batch,
                    dtype=dtype,
                    rounds=0,
                    status="skipped (time budget)",
                )
            )
            continue
        check = measure_overhead(
            task_name,
            seq_len,
            batch,
            args.device,
            dtype,
            args.warmup,
            args.overhead_rounds,
            args.profile_steps,
        )
        report["overhead"].append(check)
        if check["status"] == "ok":
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
        else:
            print(f"overhead {task_name} {seq_len}x{batch} {dtype}: {check['status']}", flush=True)


def run_cases(args, tasks, report, over_budget, save):
    """The plan's cases, into report["rows"]; `save()` after each, so that a run cut short keeps its rows."""
    cases = [
        dict(task=task_name, seq_len=seq_len, batch=batch, impl=impl)
        for task_name, seq_len, batch in PLANS[args.plan]
        if task_name in tasks
        for impl in args.impls
        if not (args.plan == "cpu" and impl in GPU_ONLY) and not (TASKS[task_name].causal and impl in MLM_ONLY)
    ]
    for case in cases:
        task_name, seq_len, batch, impl = case["task"], case["seq_len"], case["batch"], case["impl"]
        if over_budget():
            row = dict(case, tokens=batch * seq_len, status="skipped (time budget)")
        elif args.device == "cpu" and not args.in_process:
            row = run_case_in_subprocess(case, args)
        else:
            row = run_case(case, args.device, args.dtype, args.warmup, args.steps)
        report["rows"].append(row)
        speed = (
            f"{row['tokens_per_s']:>12,.0f} tok/s  {gib(row['peak_mem_bytes'])} GiB"
            if row["status"] == "ok"
            else row["status"]
        )
        print(f"{task_name:>9} {seq_len:>6} x{batch:<3} {impl:<24} {speed}", flush=True)
        save()


# Reports ---------------------------------------------------------------------------------------------------------


def machine_and_versions(device, threads):
    import transformers

    info = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(),
        processor=cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=threads,
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        reformer_pytorch=package_version("reformer-pytorch"),
        reformer_ko_commit=git_commit(),
    )
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        info.update(
            gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1), cuda=torch.version.cuda
        )
    return info


def load_average():
    """The 1-minute load average (other processes competing for the cores), or None."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def package_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def gib(value):
    return f"{value / 2**30:.2f}" if value else "–"


def step_memory(row, device):
    """Bytes a case added: on a GPU all it allocated; on CPU its peak RSS above the process before the model."""
    if row.get("status") != "ok":
        return None
    base = (row.get("base_mem_bytes") or 0) if device == "cpu" else 0
    return row["peak_mem_bytes"] - base


def memory_cell(row, report):
    if row.get("status") != "ok":
        return "–"
    if report["device"] == "cuda" or not report["settings"]["isolated_processes"]:
        return gib(row["peak_mem_bytes"])
    return f"{gib(row['peak_mem_bytes'])} ({gib(step_memory(row, 'cpu'))})"


def ratio(ours, theirs, key):
    if not ours or not theirs or ours.get("status") != "ok" or theirs.get("status") != "ok":
        return "–"
    return f"{ours[key] / theirs[key]:.3f}"


def markdown_report(report):
    rows = report["rows"]
    if report["device"] == "cuda":
        memory = "peak GiB (max_memory_allocated)"
    elif report["settings"]["isolated_processes"]:
        memory = "peak RSS GiB (own process; above its start)"
    else:
        memory = "peak RSS GiB (shared process: not per case)"
    lines = [
        f"## Training step, {report['device']} ({report['machine'].get('gpu') or report['machine']['processor']})",
        "",
    ]
    # On CPU the process's CPU time per step is also given, and the ratios use it: on cores shared with other
    # processes the wall time of a case depends on the minute it ran in, its CPU time far less.
    on_cpu = report["device"] == "cpu"
    clock = (
        "CPU time per step (the work; other processes' load moves it far less than wall time)"
        if on_cpu
        else "step time"
    )
    lines.append(
        f"{report['settings']['dtype']}, median of {report['settings']['steps']} steps after "
        f"{report['settings']['warmup']} warm-up steps, torch {report['machine']['torch']}, transformers "
        f"{report['machine']['transformers']}, reformer-pytorch {report['machine']['reformer_pytorch']}, "
        f"{report['machine']['torch_threads']} threads. Ratios are ratios of {clock}; above 1: reformer-ko slower."
    )
    if report.get("interrupted"):
        lines.append("\nInterrupted (a time limit): the cases not listed here did not run.")
    ratio_key = "cpu_ms" if on_cpu else "step_ms"
    for task_name in dict.fromkeys(row["task"] for row in rows):
        task = TASKS[task_name]
        lines += [
            "",
            f"### {task_name}: dim {task.dim}, depth {task.depth}, heads {task.heads}, vocab {task.vocab}, "
            f"bucket {task.bucket}, {task.hashes} hashes",
            "",
        ]
        header = ["seq len", "batch", "implementation", "step ms (min–max)", "tok/s"]
        header += ["CPU ms per step", "tok per CPU-s"] if on_cpu else []
        header += [memory, "params", "ko / rp", "ko / sdpa"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---:|---:|---|" + "---:|" * (len(header) - 3))
        for seq_len, batch in sorted(dict.fromkeys((r["seq_len"], r["batch"]) for r in rows if r["task"] == task_name)):
            group = {
                row["impl"]: row
                for row in rows
                if (row["task"], row["seq_len"], row["batch"]) == (task_name, seq_len, batch)
            }
            for impl, row in group.items():
                cells = [f"{seq_len:,}", str(batch), impl]
                if row["status"] == "ok":
                    cells += [f"{row['step_ms']:.1f} ({row['step_ms_min']:.1f}–{row['step_ms_max']:.1f})"]
                    cells += [f"{row['tokens_per_s']:,.0f}"]
                    cells += [f"{row['cpu_ms']:.1f}", f"{1000 * row['tokens'] / row['cpu_ms']:,.0f}"] if on_cpu else []
                else:
                    cells += [row["status"], "–"] + (["–", "–"] if on_cpu else [])
                cells += [memory_cell(row, report), f"{row.get('params', 0) / 1e6:.3g}M"]
                if impl.startswith("reformer-ko"):
                    cells += [ratio(row, group.get(other), ratio_key) for other in ("reformer-pytorch", "sdpa")]
                else:
                    cells += ["", ""]
                lines.append("| " + " | ".join(cells) + " |")
    if report["overhead"]:
        lines += ["", "### Wrapper overhead (one process, alternating steps, same weights for matched and raw)", ""]
        clocks = [("", "wall")] + ([("cpu_", "CPU time")] if report["device"] == "cpu" else [])
        header = ["task", "seq len", "batch", "dtype", "rounds", "model"]
        for _, clock in clocks:
            header += [f"{clock} step ms median (IQR)", f"{clock} ratio to reformer-pytorch: median (IQR; min–max)"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---|---:|---:|---|---:|---|" + "---:|" * (len(header) - 6))
        for check in report["overhead"]:
            where = (
                f"| {check['task']} | {check['seq_len']:,} | {check['batch']} | {check['dtype']} | {check['rounds']} |"
            )
            if check["status"] != "ok":
                lines.append(f"{where} – | {check['status']} |")
                continue
            for name in check["step_ms"]:
                cells = [name]
                for prefix, _ in clocks:
                    step = check[f"{prefix}step_ms"][name]
                    r = check[f"{prefix}ratio_to_reformer_pytorch"].get(name)
                    cells.append(f"{step['median']:.1f} ({step['q1']:.1f}–{step['q3']:.1f})")
                    cells.append(
                        f"{r['median']:.3f} ({r['q1']:.3f}–{r['q3']:.3f}; {r['min']:.3f}–{r['max']:.3f})" if r else ""
                    )
                lines.append(f"{where} " + " | ".join(cells) + " |")
        for check in report["overhead"]:
            if check.get("logits_difference_matched_vs_raw"):
                diff = check["logits_difference_matched_vs_raw"]
                lines.append(
                    f"\n{check['task']} {check['seq_len']:,}: matched vs raw logits, same weights and rotations: "
                    f"max |Δ| {diff['max_abs']:.3g} (largest |logit| {diff['max_abs_logit']:.3g}), "
                    f"mean |Δ| {diff['mean_abs']:.3g}."
                )
    return "\n".join(lines) + "\n"


def tokens_per_second(row, device):
    """Tokens per second; on CPU per second of the process's CPU time (see `markdown_report`)."""
    return row["tokens_per_s"] if device == "cuda" else 1000 * row["tokens"] / row["cpu_ms"]


def plot(report, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
        return None
    rows = [row for row in report["rows"] if row["status"] == "ok"]
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    if not tasks:
        print("no measured rows: skipping the plot")
        return None
    figure, axes = plt.subplots(2, len(tasks), figsize=(5.5 * len(tasks), 8), squeeze=False)
    memory_label = (
        "peak GiB (max_memory_allocated)" if report["device"] == "cuda" else "peak RSS above process start, GiB"
    )
    for column, task_name in enumerate(tasks):
        for impl in dict.fromkeys(row["impl"] for row in rows):
            points = sorted(
                (row["seq_len"], tokens_per_second(row, report["device"]), step_memory(row, report["device"]) / 2**30)
                for row in rows
                if row["task"] == task_name and row["impl"] == impl
            )
            if points:
                x, speed, memory = zip(*points, strict=True)
                axes[0][column].plot(x, speed, marker="o", label=impl)
                axes[1][column].plot(x, memory, marker="o", label=impl)
        axes[0][column].set_title(f"{task_name} ({report['machine'].get('gpu') or report['device']})")
        axes[0][column].set_ylabel("tokens / s" if report["device"] == "cuda" else "tokens per CPU-second")
        axes[1][column].set_ylabel(memory_label)
        for axis in (axes[0][column], axes[1][column]):
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel("sequence length")
            axis.grid(True, which="both", alpha=0.3)
        axes[0][column].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# Main ------------------------------------------------------------------------------------------------------------


def write_reports(report, stem):
    """The Markdown tables and the plot of a report, beside its JSON (`stem` without suffix)."""
    markdown = markdown_report(report)
    stem.with_suffix(".md").write_text(markdown)
    plot(report, stem.with_suffix(".png"))
    print("\n" + markdown)


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
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--report-only", type=Path, help="rewrite the .md and .png of a saved .json, measure nothing")
    parser.add_argument("--case", help=argparse.SUPPRESS)
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
    if args.case:
        print("ROW " + json.dumps(run_case(json.loads(args.case), args.device, args.dtype, args.warmup, args.steps)))
        return None
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU visible to torch")
    # On a GPU every case runs in this process, and each compiles FlexAttention for its own shapes: more variants
    # than dynamo's default limit of 8, past which it would run FlexAttention unfused.
    torch._dynamo.config.recompile_limit = 64

    started = time.perf_counter()
    over_budget = lambda: time.perf_counter() - started > args.time_budget  # noqa: E731
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

    def save():
        stem.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")

    try:
        if args.overhead_rounds:
            run_overhead_checks(args, tasks, report, over_budget)
        run_cases(args, tasks, report, over_budget, save)
    except KeyboardInterrupt:  # e.g. benchmarks/run_gpu.sh's time limit (SIGINT): report what was measured
        report["interrupted"] = True
        print("interrupted: reporting what was measured so far", flush=True)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    report["settings"]["load_average_at_end"] = load_average()
    save()
    write_reports(report, stem)
    print(f"wrote {stem}.json/.md/.png in {report['elapsed_s']} s")
    return report


if __name__ == "__main__":
    main()
