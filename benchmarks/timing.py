"""Running and timing a case: one training step (forward, loss, backward, AdamW) with its wall and CPU time, a
case's warm-up and timed steps with its peak memory (an out-of-memory case is a row, not a crash), a fresh process
per case on CPU, several models stepped alternately round by round, and a wall-clock budget.

    python -m benchmarks.timing CASE_JSON   # one case, as `run_case_in_subprocess` runs it: prints "ROW <json>"
"""

import contextlib
import gc
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

from benchmarks.models import IMPLEMENTATIONS, TASKS, import_libraries, make_batch
from benchmarks.reports import RESULTS

REPO = Path(__file__).resolve().parents[1]


class StepTime(NamedTuple):
    """Seconds one step took: wall time, and the process's CPU time over all its threads. On cores shared with
    other processes, their load lengthens the wall time far more than the CPU time (the work done)."""

    wall_s: float
    cpu_s: float


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(function, device):
    """Call `function()`: what it returned and its `StepTime`, counted until the GPU's queued work is done."""
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function()
    synchronize(device)
    return result, StepTime(time.perf_counter() - start, time.process_time() - cpu_start)


def default_dtype(device):
    """The autocast dtype when none is asked for: bf16 on a GPU, none (fp32) on CPU."""
    return "bf16" if device == "cuda" else "fp32"


def autocast_context(device, dtype):
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[dtype])


class StepRunner:
    """A model, its AdamW (lr 1e-4) and its loss on a fixed batch: `step()` runs one training step and returns its
    `StepTime`; a loss that is not finite raises `FloatingPointError`."""

    def __init__(self, model, loss_fn, batch, device, dtype):
        self.model = model.to(device).train()
        self.loss_fn = loss_fn
        self.batch = batch
        self.device = device
        self.dtype = dtype
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

    def train_step(self):
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.device, self.dtype):
            loss = self.loss_fn(self.model, *self.batch)
        loss.backward()
        self.optimizer.step()
        return loss

    def step(self):
        loss, took = timed(self.train_step, self.device)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()}")
        return took


def case_runner(impl, task_name, seq_len, batch_size, device, dtype):
    """The StepRunner of one case: the implementation built with seed 0, on the case's fixed random batch."""
    task = TASKS[task_name]
    torch.manual_seed(0)
    model, loss_fn = IMPLEMENTATIONS[impl](task, seq_len)
    return StepRunner(model, loss_fn, make_batch(task, seq_len, batch_size, device), device, dtype)


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
    parser.add_argument("--out", type=Path, default=RESULTS)


def finish_case_arguments(args):
    args.dtype = args.dtype or default_dtype(args.device)
    return args


class TimeBudget:
    """Seconds since it was made, and whether `seconds` have passed: work that would start after that is skipped."""

    def __init__(self, seconds):
        self.start, self.seconds = time.perf_counter(), seconds

    def elapsed(self):
        return time.perf_counter() - self.start

    def spent(self):
        return self.elapsed() > self.seconds


# Memory and failures ----------------------------------------------------------------------------------------------


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


def failure_status(error):
    """A failed measurement's status: "oom" for out-of-memory, else the error in one line."""
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
        return "oom"
    return f"error: {type(error).__name__}: {error}"[:300]


def release_memory(device):
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


# One case ---------------------------------------------------------------------------------------------------------


def run_case(case, device, dtype, warmup, steps):
    """Build, warm up and time one (task, length, batch, implementation); returns the row as a dict."""
    import_libraries()
    row = dict(case, tokens=case["batch"] * case["seq_len"], status="ok")
    runner = None
    try:
        if device == "cuda":
            release_memory(device)
            torch.cuda.reset_peak_memory_stats()
            row["base_mem_bytes"] = torch.cuda.memory_allocated()
        else:
            row["base_mem_bytes"] = rss_bytes()
        runner = case_runner(case["impl"], case["task"], case["seq_len"], case["batch"], device, dtype)
        row["params"] = sum(parameter.numel() for parameter in runner.model.parameters())
        for _ in range(warmup):
            runner.step()
        times = [runner.step() for _ in range(steps)]
        wall = [took.wall_s for took in times]
        median = statistics.median(wall)
        row.update(
            step_ms=1000 * median,
            step_ms_min=1000 * min(wall),
            step_ms_max=1000 * max(wall),
            step_ms_all=[round(1000 * t, 3) for t in wall],
            cpu_ms=1000 * statistics.median(took.cpu_s for took in times),
            tokens_per_s=row["tokens"] / median,
        )
        if device == "cuda":
            row["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
            row["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        else:
            row["peak_mem_bytes"] = peak_rss_bytes()
    except Exception as error:  # noqa: BLE001 - an unattended GPU run must record a failing case and go on
        row["status"] = failure_status(error)
    finally:
        del runner
        release_memory(device)
    return row


def run_case_in_subprocess(case, device, dtype, warmup, steps, threads):
    """`run_case` in a fresh Python process with `threads` threads, so that its peak RSS is its own."""
    settings = dict(case=case, device=device, dtype=dtype, warmup=warmup, steps=steps, threads=threads)
    command = [sys.executable, "-m", "benchmarks.timing", json.dumps(settings)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
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


# Several models, alternately --------------------------------------------------------------------------------------


def alternate(steps, warmup, rounds):
    """Call every step function (name -> function returning a `StepTime`) once per round, rotating the order, so
    that a machine that slows down slows all alike; the seconds per name, wall and CPU."""
    names = list(steps)
    for name in names:
        for _ in range(warmup):
            steps[name]()
    wall, cpu = {name: [] for name in names}, {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            took = steps[name]()
            wall[name].append(took.wall_s)
            cpu[name].append(took.cpu_s)
    return wall, cpu


def spread(values):
    """Median, quartiles and range."""
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
    return dict(median=statistics.median(ordered), q1=quartiles[0], q3=quartiles[2], min=ordered[0], max=ordered[-1])


def milliseconds_spread(seconds):
    return spread([1000 * value for value in seconds])


def ratio_spread(seconds, baseline_seconds):
    """The spread of the round-by-round ratios of `seconds` to `baseline_seconds` (timed in the same rounds)."""
    return spread([ours / theirs for ours, theirs in zip(seconds, baseline_seconds, strict=True)])


def main(argv=None):
    settings = json.loads((argv or sys.argv[1:])[0])
    torch.set_num_threads(settings.pop("threads"))
    print("ROW " + json.dumps(run_case(**settings)))


if __name__ == "__main__":
    main()
