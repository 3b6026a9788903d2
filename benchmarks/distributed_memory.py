"""Peak memory per process of the same training under DDP and under FSDP, on 2 CPU processes over gloo.

    python benchmarks/distributed_memory.py [--preset mlm-small] [--vocab-size 22000] [--config-overrides A=1,B=2]
        [--seq-len 512] [--batch-size 2] [--steps 3] [--processes 2] [--out DIR]

Each mode runs in its own `torchrun` launch: the model (a `ReformerKoForMaskedLM` of the preset, seed 0), AdamW,
`--steps` training steps on random tokens (each process its own batch of `--batch-size` blocks of `--seq-len`
tokens). DDP wraps the model whole, with the options reformer-ko sets for it (`distributed_defaults`); FSDP is
torch's FSDP2 with examples/fsdp_config.json's policy: `fully_shard` on every reformer-pytorch `PreNorm` (each
layer's attention and feed-forward), then on the model, resharding after forward. (accelerate does not run FSDP on
CPUs, so the modes are set up here directly, as accelerate sets them up on GPUs.) Each process reports:

- the bytes of training state it holds after the last step: parameters, gradients and AdamW's two moments, counted
  as its local shards (a DTensor's `to_local()`; DDP's gradient buckets, a copy of the gradients, are not counted);
- its peak resident memory (`VmHWM`), and the part of it above the process before the model was built.

Prints a Markdown table for docs/benchmarks.md and writes the JSON to `--out`
(default: benchmarks/results/distributed_memory_cpu/).
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODES = ("ddp", "fsdp")
FSDP_CONFIG = REPO / "examples" / "fsdp_config.json"


def resident_memory():
    """The process's current and peak resident memory in bytes (VmRSS, VmHWM)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM"))


def local_bytes(tensor):
    tensor = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return tensor.numel() * tensor.element_size()


def training_state_bytes(model, optimizer):
    """Bytes of parameters, gradients and optimizer state this process holds."""
    parameters = list(model.parameters())
    return {
        "parameters": sum(local_bytes(p) for p in parameters),
        "gradients": sum(local_bytes(p.grad) for p in parameters if p.grad is not None),
        "optimizer": sum(
            local_bytes(value)
            for parameter_state in optimizer.state.values()
            for value in parameter_state.values()
            if hasattr(value, "numel") and value.dim() > 0
        ),
    }


def wrap(mode, model, wrap_classes):
    """The model under DDP, or sharded with FSDP2 by the wrap policy, as accelerate would prepare it."""
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        # reformer-ko's DDP options (distributed_defaults): every parameter is used in every step.
        return DistributedDataParallel(model, find_unused_parameters=False)
    from torch.distributed.fsdp import fully_shard

    for module in [module for module in model.modules() if type(module).__name__ in wrap_classes]:
        fully_shard(module, reshard_after_forward=True)
    fully_shard(model, reshard_after_forward=True)
    return model


def worker(args):
    """One process of a mode: build, wrap, train, report."""
    import torch
    import torch.distributed as dist

    from reformer_ko import ReformerKoConfig, ReformerKoForMaskedLM
    from reformer_ko.training import parse_config_overrides

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    before_model, _ = resident_memory()
    torch.manual_seed(0)
    overrides = {"hidden_dropout_prob": 0.0, **parse_config_overrides(args.config_overrides)}
    config = ReformerKoConfig.from_preset(args.preset, vocab_size=args.vocab_size, **overrides)
    model = ReformerKoForMaskedLM(config)
    total_parameters = sum(parameter.numel() for parameter in model.parameters())
    wrap_classes = json.loads(FSDP_CONFIG.read_text())["transformer_layer_cls_to_wrap"]
    wrapped = wrap(args.worker, model, wrap_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(rank)
    losses = []
    for _ in range(args.steps):
        tokens = torch.randint(5, args.vocab_size, (args.batch_size, args.seq_len), generator=generator)
        loss = wrapped(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        state = training_state_bytes(model, optimizer)
        optimizer.zero_grad(set_to_none=False)
    _, peak = resident_memory()
    result = dict(
        mode=args.worker, rank=rank, parameters=total_parameters, state_bytes=state, peak_rss_bytes=peak,
        rss_before_model_bytes=before_model, losses=losses,
    )  # fmt: skip
    Path(args.result).with_suffix(f".rank{rank}.json").write_text(json.dumps(result))
    # The DDP wrapper goes before the process group: a reducer that outlives the group destroys it at exit, holding
    # the GIL that gloo's threads need (the exit then hangs; reformer_ko.training.end_training does the same).
    del wrapped, optimizer
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def launch(mode, args, result_dir):
    """Run `mode` on `--processes` CPU processes; their reports, by rank."""
    result = Path(result_dir) / mode
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(args.processes), "--master_port",
        str(args.port), __file__, "--worker", mode, "--result", str(result), "--preset", args.preset,
        "--vocab-size", str(args.vocab_size), "--config-overrides", args.config_overrides, "--seq-len",
        str(args.seq_len), "--batch-size", str(args.batch_size), "--steps", str(args.steps),
    ]  # fmt: skip
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return [json.loads(result.with_suffix(f".rank{rank}.json").read_text()) for rank in range(args.processes)]


def mib(value):
    return f"{value / 2**20:,.0f}"


def markdown(reports):
    lines = [
        "| mode | rank | parameters MiB | + gradients | + AdamW state | = training state | peak RSS MiB "
        "| peak RSS above start MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        state = report["state_bytes"]
        cells = [
            report["mode"].upper(), str(report["rank"]), mib(state["parameters"]), mib(state["gradients"]),
            mib(state["optimizer"]), mib(sum(state.values())),
            mib(report["peak_rss_bytes"]), mib(report["peak_rss_bytes"] - report["rss_before_model_bytes"]),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="mlm-small", help="the ReformerKoConfig preset (default: mlm-small)")
    parser.add_argument("--vocab-size", type=int, default=22000)
    parser.add_argument("--config-overrides", default="", help="config fields over the preset's (a=1,b=2)")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2, help="blocks per process and step")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--port", type=int, default=29517, help="torchrun's rendezvous port")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from benchmarks.machine import machine_and_versions
    from benchmarks.reports import RESULTS, write_results

    with tempfile.TemporaryDirectory() as result_dir:
        reports = [report for mode in MODES for report in launch(mode, args, result_dir)]
    names = ("preset", "vocab_size", "config_overrides", "seq_len", "batch_size", "steps", "processes")
    settings = {name: getattr(args, name) for name in names}
    report = {"machine": machine_and_versions("cpu", 1), "settings": settings, "reports": reports}
    out = args.out or RESULTS / "distributed_memory_cpu"
    write_results(out / "distributed_memory_cpu", report, markdown(reports) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
