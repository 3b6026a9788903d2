"""benchmarks/distributed_memory.py at a tiny size: DDP and FSDP on 2 CPU processes, what each process holds."""

import json

from pretraining_fixtures import ROOT, run_python
from test_distributed import free_port

BENCHMARK = ROOT / "benchmarks" / "distributed_memory.py"
TINY = "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=128,bucket_size=16"


def test_fsdp_holds_half_the_training_state_of_ddp_per_process_for_the_same_losses(tmp_path):
    run_python(
        [
            BENCHMARK, "--vocab-size", "500", "--config-overrides", TINY, "--seq-len", "64", "--batch-size", "1",
            "--steps", "2", "--port", str(free_port()), "--out", tmp_path / "results",
        ],
        tmp_path,
        timeout=300,
    )  # fmt: skip
    report = json.loads((tmp_path / "results" / "distributed_memory_cpu.json").read_text())
    by_mode = {mode: [r for r in report["reports"] if r["mode"] == mode] for mode in ("ddp", "fsdp")}
    for ddp, fsdp in zip(by_mode["ddp"], by_mode["fsdp"]):
        assert ddp["rank"] == fsdp["rank"] and ddp["losses"] == fsdp["losses"]  # the same computation
        for part in ("parameters", "gradients", "optimizer"):
            assert 0.45 < fsdp["state_bytes"][part] / ddp["state_bytes"][part] < 0.55, (part, ddp, fsdp)
        assert fsdp["peak_rss_bytes"] > fsdp["rss_before_model_bytes"] > 0
    table = (tmp_path / "results" / "distributed_memory_cpu.md").read_text()
    assert table.count("| DDP |") == table.count("| FSDP |") == 2
