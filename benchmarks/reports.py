"""The training-step report: its JSON, its Markdown tables (CPU or step time, tokens/s, peak memory, parameters
and the in-run ratios of reformer-ko to raw reformer-pytorch and to SDPA; the wrapper-overhead check) and its plot
(tokens/s and peak memory against sequence length), and the cells and tables the other benchmarks' reports share.
"""

import json
from pathlib import Path

from benchmarks.models import TASKS

# Where the benchmarks write by default (`--out`).
RESULTS = Path(__file__).resolve().parent / "results"


def write_json(path, data):
    path.write_text(json.dumps(data, indent=1) + "\n")


def write_results(stem, data, markdown):
    """A measurement's results: `data` as `stem`.json, `markdown` as `stem`.md beside it, and the tables printed."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    write_json(stem.with_suffix(".json"), data)
    stem.with_suffix(".md").write_text(markdown)
    print("\n" + markdown)


def spread_cell(spread, digits=3, with_range=True):
    """A `timing.spread` as "median (q1–q3; min–max)", or without the range "median (q1–q3)"."""
    cell = f"{spread['median']:.{digits}f} ({spread['q1']:.{digits}f}–{spread['q3']:.{digits}f}"
    if with_range:
        cell += f"; {spread['min']:.{digits}f}–{spread['max']:.{digits}f}"
    return cell + ")"


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
                    cells.append(spread_cell(step, digits=1, with_range=False))
                    cells.append(spread_cell(r) if r else "")
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


def write_reports(report, stem):
    """The Markdown tables and the plot of a report, beside its JSON (`stem` without suffix)."""
    markdown = markdown_report(report)
    stem.with_suffix(".md").write_text(markdown)
    plot(report, stem.with_suffix(".png"))
    print("\n" + markdown)


def profile_difference_table(difference, ours, theirs):
    """A `profiling.profile_difference` as a Markdown table: the operators' self ms per step, `ours` first."""
    lines = [
        f"| operator | {ours} ms | {theirs} ms | difference | calls ({ours} / {theirs}) |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in difference["top"]:
        lines.append(
            f"| {row['op']} | {row['ours_ms']:.2f} | {row['theirs_ms']:.2f} | {row['diff_ms']:+.2f} | "
            f"{row['ours_calls']:.0f} / {row['theirs_calls']:.0f} |"
        )
    return "\n".join(lines) + "\n"
