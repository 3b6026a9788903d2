"""GPU check of the flex_attention LSH backend: equality with the eager attention (forward and backward), then
the attention's speed beside the eager one, reformer-pytorch's own and full SDPA (flash) attention.

    python benchmarks/gpu_flex_check.py --out "$OUT"          # on a CUDA GPU: about 2-3 minutes
    python benchmarks/gpu_flex_check.py --dry-run --out DIR   # on CPU, tiny sizes, seconds: every code path

Checks, in this order (later sections are skipped, and say so, once `--time-budget` seconds have passed; the
single-hash case of 1 and 2 runs last):
1. fp32, the attention module alone, bidirectional and causal, padded rows, the same buckets for every run:
   FlexLSHAttention's output and gradients (qk, v) against PaddingSafeLSHAttention run in float64, at real tokens;
   pass: max |difference| <= 1e-5 * max(1, max |reference|). TF32 is off for this section.
2. bf16 inputs: relative error ||x - ref|| / ||ref|| of flex's output and gradients against the float64 reference
   (the eager bf16 error beside it); pass: <= 1e-2.
3. Timing of the attention alone in bf16, forward + backward, median of CUDA-event timings, with peak memory:
   reformer-pytorch's LSHAttention, the eager and the flex backend (whole function: hash, sort, attend, unsort,
   combine), the attend step alone for both, and full SDPA attention over the same tokens; 32 x 4,096 and
   8 x 65,536 tokens of 64 dims, 4 hash rounds, buckets of 64 (the sizes of shared/ANCHORS.md).
4. Whole models, fp32, reversible layers: masked LM and causal LM, eager vs flex with the same weights and
   rotations: logits at real tokens and every parameter gradient.
Every flex measurement also checks that the backend did not fall back to the eager attention.

In --dry-run mode (CPU) FlexAttention's compiled kernels are replaced by a dense, differentiable evaluation of
the same mask and score rules (CPU FlexAttention has no backward), so the run checks the plumbing, not the kernels.
Writes gpu_flex_check.json to --out (default: $OUT, else benchmarks/results) and prints a short table last.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reformer_pytorch.reformer_pytorch import LSHAttention

from benchmarks.machine import machine_and_versions
from benchmarks.reports import RESULTS, write_json
from benchmarks.timing import TimeBudget, synchronize
from reformer_ko import ReformerKoConfig, ReformerKoForCausalLM, ReformerKoForMaskedLM
from reformer_ko import lsh_attention
from reformer_ko.lsh_attention import FlexLSHAttention, PaddingSafeLSHAttention

PLANS = {
    "cuda": dict(
        check=(8, 1024), dim=64, bucket=64, timing=[(32, 4096), (8, 65536)], model=(2, 2048), warmup=3, repeats=10
    ),
    "dry-run": dict(check=(2, 64), dim=16, bucket=16, timing=[(2, 64)], model=(2, 64), warmup=1, repeats=1),
}
# Each case compiles its own kernels (tens of seconds on a GPU): the single-hash case runs last, if time is left.
CASES = [dict(causal=False, n_hashes=4), dict(causal=True, n_hashes=4)]
LAST_CASES = [dict(causal=True, n_hashes=1)]


def dense_lsh_attention(query, key, value, positions, n_real, kv_num_blocks, kv_indices, bucket_size, causal):
    """`lsh_attention.flex_lsh_attention`'s rules evaluated densely and differentiably: the dry run's stand-in for the
    compiled kernel (which needs a GPU). Ignores the block structure, as FlexAttention's unfused path does."""
    seqlen = query.shape[-2]
    index = torch.arange(seqlen, device=query.device)
    chunk = index // bucket_size
    allowed = (chunk[None, :] == chunk[:, None]) | (chunk[None, :] == chunk[:, None] - 1)
    real = index[None, :] < n_real[:, None]
    allowed = allowed[None, None] & real[:, None, :, None] & real[:, None, None, :]
    if causal:
        allowed = allowed & (positions[..., :, None] >= positions[..., None, :])
    scores = (query @ key.transpose(-1, -2)).float() * query.shape[-1] ** -0.5
    scores = torch.where(index[:, None] == index[None, :], lsh_attention.TOKEN_SELF_ATTN_VALUE, scores)
    scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    weights = torch.exp(scores - lse.masked_fill(lse == float("-inf"), 0.0)[..., None])
    return (weights.to(value.dtype) @ value), lse


def flex_fell_back():
    """Why the flex backend ran the eager attention, if it did (a measurement of it would then be wrong)."""
    return dict(lsh_attention.flex_backend.unavailable) or sorted(lsh_attention.flex_backend.fallbacks_logged) or None


def random_case(batch, length, dim, device, seed):
    """qk, v, a mask with rows of several real lengths (the first row full), and loss weights on real tokens."""
    generator = torch.Generator().manual_seed(seed)
    qk = torch.randn(batch, length, dim, generator=generator)
    v = torch.randn(batch, length, dim, generator=generator)
    real = torch.linspace(length, length // 5, batch).long()
    mask = torch.arange(length)[None, :] < real[:, None]
    weights = torch.randn(batch, length, dim, generator=generator) * mask[..., None]
    return qk.to(device), v.to(device), mask.to(device), weights.to(device)


def attention_modules(length, bucket, causal, n_hashes):
    num_buckets = max(2, length // bucket)
    kwargs = dict(num_buckets=num_buckets, hash_seed=0, bucket_size=bucket, n_hashes=n_hashes, causal=causal)
    return PaddingSafeLSHAttention(**kwargs).eval(), FlexLSHAttention(**kwargs).eval()


def output_and_gradients(attention, qk, v, mask, weights, buckets, dtype):
    """Output at every position and the gradients of sum(output * weights) for qk and v, all as float64; the
    buckets are given (as the reversible backward gives them), so every precision sees the same ones."""
    qk = qk.detach().to(dtype, copy=True).requires_grad_()
    v = v.detach().to(dtype, copy=True).requires_grad_()
    out = attention(qk, v, input_mask=mask, _bucket_cache={0: [buckets]}, _depth=0, _reverse=True)[0]
    (out.double() * weights.double()).sum().backward()
    return [tensor.detach().double() for tensor in (out, qk.grad, v.grad)]


def compare_with_float64(plan, device, case, seed):
    batch, length = plan["check"]
    qk, v, mask, weights = random_case(batch, length, plan["dim"], device, seed)
    eager, flex = attention_modules(length, plan["bucket"], **case)
    buckets = eager.hash_vectors(qk, mask)
    reference = output_and_gradients(eager, qk, v, mask, weights, buckets, torch.float64)
    result = dict(case, batch=batch, length=length)
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        flex_results = output_and_gradients(flex, qk, v, mask, weights, buckets, dtype)
        eager_results = output_and_gradients(eager, qk, v, mask, weights, buckets, dtype)
        for name, ours, theirs, ref in zip(("out", "grad_qk", "grad_v"), flex_results, eager_results, reference):
            if name == "out":  # padding outputs are not part of the function (flex: 0, eager: an average)
                ours, theirs, ref = ours[mask], theirs[mask], ref[mask]
            scale = max(1.0, ref.abs().max().item())
            result[f"{dtype_name}_{name}_flex_max_abs"] = (ours - ref).abs().max().item()
            result[f"{dtype_name}_{name}_eager_max_abs"] = (theirs - ref).abs().max().item()
            result[f"{dtype_name}_{name}_flex_rel"] = ((ours - ref).norm() / ref.norm()).item()
            result[f"{dtype_name}_{name}_eager_rel"] = ((theirs - ref).norm() / ref.norm()).item()
            result[f"{dtype_name}_{name}_finite"] = bool(torch.isfinite(ours).all())
            result[f"{dtype_name}_{name}_scale"] = scale
    result["fell_back"] = flex_fell_back()
    names = ("out", "grad_qk", "grad_v")
    fp32_ok = all(result[f"fp32_{name}_flex_max_abs"] <= 1e-5 * result[f"fp32_{name}_scale"] for name in names)
    bf16_ok = all(result[f"bf16_{name}_flex_rel"] <= 1e-2 for name in names)
    finite = all(value for key, value in result.items() if key.endswith("_finite"))
    result["passed"] = bool(fp32_ok and bf16_ok and finite and not result["fell_back"])
    return result


def median_time_ms(step, device, warmup, repeats):
    """Median time of `step()` (forward + backward) in ms, and the peak memory it allocated above its inputs."""
    for _ in range(warmup):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            start = time.perf_counter()
            step()
            times.append(1000 * (time.perf_counter() - start))
    peak = (torch.cuda.max_memory_allocated() - baseline) / 2**30 if device.type == "cuda" else None
    return statistics.median(times), (max(times) - min(times)), peak


def timing_rows(plan, device, batch, length, dtype):
    """Forward + backward of each attention variant over `batch` sequences of `length` tokens."""
    dim, bucket, n_hashes = plan["dim"], plan["bucket"], 4
    generator = torch.Generator().manual_seed(length)
    qk = torch.randn(batch, length, dim, generator=generator).to(device, dtype).requires_grad_()
    v = torch.randn(batch, length, dim, generator=generator).to(device, dtype).requires_grad_()
    grad_out = torch.randn(batch, length, dim, generator=generator).to(device, dtype)
    eager, flex = attention_modules(length, bucket, causal=False, n_hashes=n_hashes)
    eager.train(), flex.train()  # fresh rotations every call, as in training
    upstream = LSHAttention(bucket_size=bucket, n_hashes=n_hashes, causal=False)

    total = n_hashes * length
    sorted_qk = torch.randn(batch, total, dim, generator=generator).to(device, dtype).requires_grad_()
    sorted_v = torch.randn(batch, total, dim, generator=generator).to(device, dtype).requires_grad_()
    positions = torch.stack([torch.randperm(length, generator=generator) for _ in range(n_hashes)], dim=0)
    positions = positions.reshape(1, total).expand(batch, total).to(device)
    sorted_grad = torch.randn(batch, total, dim, generator=generator).to(device, dtype)
    q4 = qk.detach().reshape(batch, 1, length, dim).requires_grad_()
    k4 = F.normalize(q4.detach(), dim=-1).requires_grad_()
    v4 = v.detach().reshape(batch, 1, length, dim).requires_grad_()

    def whole(attention):
        return lambda: attention(qk, v)[0].backward(grad_out)

    def attend(attention):
        return lambda: attention.attend_sorted(sorted_qk, sorted_v, positions, None)[0].backward(sorted_grad)

    variants = [
        ("reformer-pytorch LSHAttention", whole(upstream)),
        ("eager (PaddingSafeLSHAttention)", whole(eager)),
        ("flex (FlexLSHAttention)", whole(flex)),
        ("eager attend_sorted only", attend(eager)),
        ("flex attend_sorted only", attend(flex)),
        ("sdpa full attention", lambda: F.scaled_dot_product_attention(q4, k4, v4).backward(grad_out.view_as(q4))),
    ]
    rows = []
    for name, step in variants:
        row = dict(variant=name, batch=batch, length=length, dim=dim, n_hashes=n_hashes, bucket=bucket)
        try:
            row["ms"], row["spread_ms"], row["peak_gib"] = median_time_ms(step, device, plan["warmup"], plan["repeats"])
        except torch.OutOfMemoryError:
            row["status"] = "oom"
        if name.startswith("flex"):
            row["fell_back"] = flex_fell_back()
        rows.append(row)
        print(f"  {length:>6} x {batch:<3} {name:<34} {row.get('ms', float('nan')):9.3f} ms", flush=True)
    return rows


def model_check(plan, device, head):
    """Eager and flex models with the same weights and rotations, fp32, training step through reversible layers."""
    batch, length = plan["model"]
    causal = head is ReformerKoForCausalLM
    fields = dict(
        vocab_size=1000,
        hidden_size=4 * plan["dim"],
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=length,
        bucket_size=plan["bucket"],
        num_hashes=4,
        is_decoder=causal,
        hidden_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    eager = head(ReformerKoConfig(**fields)).to(device).train()
    flex = head(ReformerKoConfig(attn_implementation="flex_attention", **fields)).to(device).train()
    flex.load_state_dict(eager.state_dict())
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(5, 1000, (batch, length), generator=generator).to(device)
    mask = torch.ones_like(tokens)
    mask[-1, length // 3 :] = 0
    labels = tokens.masked_fill(mask == 0, -100)

    def step(model):
        model.zero_grad()
        torch.manual_seed(2)  # the same rotations in both models
        output = model(tokens, attention_mask=mask, labels=labels)
        output.loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
        return output.loss.item(), output.logits.detach()[mask.bool()], grads

    loss_e, logits_e, grads_e = step(eager)
    loss_f, logits_f, grads_f = step(flex)
    grad_rel = max(
        (grads_f[name] - grads_e[name]).abs().max().item() / max(grads_e[name].abs().max().item(), 1e-12)
        for name in grads_e
    )
    result = dict(
        head=head.__name__,
        batch=batch,
        length=length,
        loss_difference=abs(loss_f - loss_e),
        logits_max_abs=(logits_f - logits_e).abs().max().item(),
        grad_max_rel=grad_rel,
        same_parameters_with_gradients=grads_e.keys() == grads_f.keys(),
        fell_back=flex_fell_back(),
    )
    result["passed"] = bool(
        result["logits_max_abs"] <= 1e-4
        and grad_rel <= 1e-4
        and result["same_parameters_with_gradients"]
        and not result["fell_back"]
    )
    return result


def environment(device):
    """The machine and versions (benchmarks/machine.py), FlexAttention's tile size and, on a GPU, triton's version."""
    info = dict(
        machine_and_versions(device.type, torch.get_num_threads()),
        device=str(device),
        flex_block_size=lsh_attention.FLEX_BLOCK_SIZE,
    )
    if device.type == "cuda":
        info["capability"] = list(torch.cuda.get_device_capability())
        try:
            import triton

            info["triton"] = triton.__version__
        except ImportError:
            info["triton"] = None
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, dense stand-in for the kernels")
    parser.add_argument("--time-budget", type=float, default=170.0, help="seconds; later sections are skipped")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or RESULTS))
    args = parser.parse_args()

    clock = TimeBudget(args.time_budget)
    if args.dry_run:
        device, plan = torch.device("cpu"), PLANS["dry-run"]
        lsh_attention.flex_backend.kernel = lambda device_type: dense_lsh_attention
    elif torch.cuda.is_available():
        device, plan = torch.device("cuda"), PLANS["cuda"]
    else:
        sys.exit("No CUDA GPU: run with --dry-run on CPU.")
    # More compiled variants than dynamo's default of 8 (dtype, causal, rounds, grad mode, shapes): past the limit it
    # would run FlexAttention unfused, materialising every score.
    torch._dynamo.config.recompile_limit = 64
    report = dict(dry_run=args.dry_run, environment=environment(device), sections={}, skipped=[])
    print(json.dumps(report["environment"]), flush=True)

    def section(name, run):
        if clock.spent() or report.get("interrupted"):
            report["skipped"].append(name)
            print(f"skipped {name}: {'interrupted' if report.get('interrupted') else 'time budget spent'}", flush=True)
            return
        began = clock.elapsed()
        print(f"{name} ...", flush=True)
        try:
            report["sections"][name] = run()
        except KeyboardInterrupt:  # e.g. benchmarks/run_gpu.sh's time limit (SIGINT): report what was measured
            report["interrupted"] = name
            report["skipped"].append(name)
            print(f"{name}: interrupted after {clock.elapsed() - began:.1f} s", flush=True)
            return
        print(f"{name}: {clock.elapsed() - began:.1f} s", flush=True)

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    section("equality", lambda: [compare_with_float64(plan, device, case, seed) for seed, case in enumerate(CASES)])
    dtype = torch.bfloat16
    for batch, length in plan["timing"]:
        section(f"timing_{length}", lambda batch=batch, length=length: timing_rows(plan, device, batch, length, dtype))
    for head in (ReformerKoForMaskedLM, ReformerKoForCausalLM):
        section(f"model_{head.__name__}", lambda head=head: model_check(plan, device, head))
    section("equality_last", lambda: [compare_with_float64(plan, device, case, 9) for case in LAST_CASES])

    equality = [check for name in ("equality", "equality_last") for check in report["sections"].get(name, [])]
    checks = equality + [report["sections"][name] for name in report["sections"] if name.startswith("model_")]
    timings = [row for name, rows in report["sections"].items() if name.startswith("timing_") for row in rows]
    report["passed"] = bool(checks) and all(check["passed"] for check in checks)
    report["passed"] = report["passed"] and not any(row.get("fell_back") for row in timings)
    report["elapsed_s"] = clock.elapsed()
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "gpu_flex_check.json", report)

    print(f"\n{'check':<34} fp32 out    fp32 grad_qk fp32 grad_v  {'bf16 rel (out/qk/v)':<26} passed")
    for check in equality:
        name = f"{'causal' if check['causal'] else 'bidirectional'}, {check['n_hashes']} hash(es)"
        bf16 = "/".join(f"{check[f'bf16_{key}_flex_rel']:.1e}" for key in ("out", "grad_qk", "grad_v"))
        print(
            f"{name:<34} {check['fp32_out_flex_max_abs']:.2e}    {check['fp32_grad_qk_flex_max_abs']:.2e}     "
            f"{check['fp32_grad_v_flex_max_abs']:.2e}     {bf16:<26} {check['passed']}"
        )
    for name in report["sections"]:
        if name.startswith("model_"):
            check = report["sections"][name]
            print(
                f"{check['head']:<34} logits {check['logits_max_abs']:.2e}, grads rel {check['grad_max_rel']:.2e}"
                f"{'':<19} {check['passed']}"
            )
    print(f"\n{'tokens':>6} x {'seqs':<4} {'variant':<34} {'ms':>9} {'peak GiB':>9}")
    for row in timings:
        peak = f"{row['peak_gib']:9.2f}" if row.get("peak_gib") is not None else f"{'-':>9}"
        print(f"{row['length']:>6} x {row['batch']:<4} {row['variant']:<34} {row.get('ms', float('nan')):9.3f} {peak}")
    print(f"\nskipped: {report['skipped'] or 'nothing'}; {report['elapsed_s']:.0f} s; passed: {report['passed']}")
    print(f"wrote {args.out / 'gpu_flex_check.json'}")
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
