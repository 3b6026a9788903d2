"""Operator profiles: each operator's self time per step over a few profiled steps, and the operators where two
profiles differ most (the wrapper-overhead check's models, the two LSH attentions alone)."""

from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile


def profile_operators(step, steps, device):
    """Self time per operator in ms per step (CPU, and on a GPU the kernels it launched) and calls per step, over
    `steps` calls of `step()`. Operators only: counting the kernels' own events too would count their time twice."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        for _ in range(steps):
            step()
    table = {}
    for event in profiler.key_averages():
        if event.device_type != DeviceType.CPU or event.is_user_annotation:
            continue
        device_us = getattr(event, "self_device_time_total", 0) or 0
        table[event.key] = dict(
            cpu_ms=event.self_cpu_time_total / 1000 / steps,
            device_ms=device_us / 1000 / steps,
            calls=event.count / steps,
        )
    return table


def profile_difference(ours, theirs, top=15):
    """The `top` operators where two `profile_operators` tables differ most in self time (on the GPU's clock
    when there is one), with both totals."""
    key = "device_ms" if any(row["device_ms"] for row in ours.values()) else "cpu_ms"
    empty = dict(cpu_ms=0.0, device_ms=0.0, calls=0.0)
    rows = []
    for name in set(ours) | set(theirs):
        mine, other = ours.get(name, empty), theirs.get(name, empty)
        rows.append(
            dict(
                op=name,
                ours_ms=mine[key],
                theirs_ms=other[key],
                ours_calls=mine["calls"],
                theirs_calls=other["calls"],
                diff_ms=mine[key] - other[key],
            )
        )
    rows.sort(key=lambda row: -abs(row["diff_ms"]))
    return dict(
        clock=key,
        ours_total_ms=sum(row["ours_ms"] for row in rows),
        theirs_total_ms=sum(row["theirs_ms"] for row in rows),
        top=rows[:top],
    )
