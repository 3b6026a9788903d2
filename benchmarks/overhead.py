"""The wrapper-overhead check: raw `ReformerLM`, reformer-ko with its structure and the same weights ("matched"),
the same with reformer-pytorch's attention swapped back in (splitting the overhead into the wrapper and the
padding-safe attention), and reformer-ko as users build it, built in one process and stepped one step each per
round in rotating order, so that a noisy machine slows all alike. Each round's ratio to raw `ReformerLM` is
reported with its spread, in wall time and in CPU time (which other processes' load hardly moves)."""

from functools import partial

import torch

from benchmarks.models import (
    TASKS,
    build_reformer_ko,
    build_reformer_ko_matched,
    build_reformer_ko_matched_rp_attention,
    build_reformer_pytorch,
    copy_into_reformer_pytorch,
    make_batch,
)
from benchmarks.profiling import profile_difference, profile_operators
from benchmarks.timing import StepRunner, alternate, failure_status, milliseconds_spread, ratio_spread, release_memory

OVERHEAD_MODELS = {
    "reformer-ko-matched": build_reformer_ko_matched,
    "reformer-pytorch": build_reformer_pytorch,
    "reformer-ko-matched-rp-attn": build_reformer_ko_matched_rp_attention,
    "reformer-ko": partial(build_reformer_ko, overrides={}),
}


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


def measure_overhead(task_name, seq_len, batch_size, device, dtype, warmup, rounds, profile_steps=0):
    """Step the OVERHEAD_MODELS one step each per round, rotating the order; with `profile_steps`, also profile
    that many steps of each and compare matched with raw and with matched-rp-attn operator by operator."""
    task = TASKS[task_name]
    result = dict(task=task_name, seq_len=seq_len, batch=batch_size, dtype=dtype, rounds=rounds, status="ok")
    runners = {}
    try:
        batch = make_batch(task, seq_len, batch_size, device)
        torch.manual_seed(0)
        models = {name: build(task, seq_len) for name, build in OVERHEAD_MODELS.items()}
        matched, raw = models["reformer-ko-matched"][0], models["reformer-pytorch"][0]
        copy_into_reformer_pytorch(matched, raw)
        models["reformer-ko-matched-rp-attn"][0].load_state_dict(matched.state_dict())
        runners = {name: StepRunner(model, loss, batch, device, dtype) for name, (model, loss) in models.items()}
        result["logits_difference_matched_vs_raw"] = logits_difference(matched, raw, batch)
        times, cpu_times = alternate({name: runner.step for name, runner in runners.items()}, warmup, rounds)
        for clock, measured in (("", times), ("cpu_", cpu_times)):
            raw_times = measured["reformer-pytorch"]
            result[f"{clock}step_ms"] = {name: milliseconds_spread(values) for name, values in measured.items()}
            result[f"{clock}ratio_to_reformer_pytorch"] = {
                name: ratio_spread(values, raw_times) for name, values in measured.items() if name != "reformer-pytorch"
            }
        if profile_steps:
            profiles = {name: profile_operators(runner.step, profile_steps, device) for name, runner in runners.items()}
            result["profile_matched_vs_raw"] = profile_difference(
                profiles["reformer-ko-matched"], profiles["reformer-pytorch"]
            )
            result["profile_matched_vs_rp_attn"] = profile_difference(
                profiles["reformer-ko-matched"], profiles["reformer-ko-matched-rp-attn"]
            )
    except Exception as error:  # noqa: BLE001 - an unattended GPU run must record a failing check and go on
        result["status"] = failure_status(error)
    finally:
        runners.clear()
        release_memory(device)
    return result
