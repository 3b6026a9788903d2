"""The training-step benchmark harness (benchmarks/train_step.py), run at tiny sizes so that it cannot rot."""

import importlib.util
import json
from argparse import Namespace
from pathlib import Path

import pytest
import torch

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


@pytest.fixture(scope="module")
def train_step():
    spec = importlib.util.spec_from_file_location("train_step", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_times_every_implementation_and_writes_the_reports(train_step, tmp_path):
    # bf16 autocast, as on the GPU, so that a dtype mismatch in any implementation shows up here.
    report = train_step.main(
        [
            "--dry-run",
            "--in-process",
            "--tasks",
            "tiny-clm",
            "--dtype",
            "bf16",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ]
    )

    assert sorted(row["impl"] for row in report["rows"]) == sorted(train_step.IMPLEMENTATIONS)
    assert all(row["status"] == "ok" and row["tokens_per_s"] > 0 for row in report["rows"]), report["rows"]
    (check,) = report["overhead"]
    assert check["status"] == "ok", check
    assert set(check["ratio_to_reformer_pytorch"]) == set(train_step.OVERHEAD_MODELS) - {"reformer-pytorch"}
    assert json.loads((tmp_path / "train_step_dry_run.json").read_text())["rows"] == report["rows"]
    markdown = (tmp_path / "train_step_dry_run.md").read_text()
    assert "| ko / rp | ko / sdpa |" in markdown and "Wrapper overhead" in markdown


def test_matched_weights_load_into_raw_reformer_pytorch(train_step):
    task = train_step.TASKS["tiny-mlm"]
    matched, _ = train_step.build_reformer_ko_matched(task, 64)
    raw, _ = train_step.build_reformer_pytorch(task, 64)

    train_step.copy_into_reformer_pytorch(matched, raw)  # strict: every raw parameter gets a value

    assert torch.equal(raw.token_emb.weight, matched.reformer.embeddings.word_embeddings.weight)
    assert sum(p.numel() for p in raw.parameters()) == sum(p.numel() for p in matched.parameters())


def test_out_of_memory_is_a_row_not_a_crash(train_step, monkeypatch):
    def out_of_memory(task, seq_len):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    monkeypatch.setitem(train_step.IMPLEMENTATIONS, "sdpa", out_of_memory)
    case = dict(task="tiny-mlm", seq_len=64, batch=2, impl="sdpa")

    row = train_step.run_case(case, "cpu", "fp32", warmup=0, steps=1)

    assert row["status"] == "oom"


def test_a_cpu_case_runs_in_its_own_process(train_step):
    args = Namespace(device="cpu", dtype="fp32", threads=1, warmup=0, steps=1)
    case = dict(task="tiny-mlm", seq_len=64, batch=1, impl="reformer-ko")

    row = train_step.run_case_in_subprocess(case, args)

    assert row["status"] == "ok", row
    assert row["peak_mem_bytes"] >= row["base_mem_bytes"] > 0


def test_the_attention_overhead_script_times_both_attentions():
    spec = importlib.util.spec_from_file_location(
        "lsh_attention_overhead", HARNESS.parent / "lsh_attention_overhead.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    times = module.main(
        ["--batch", "2", "--seq-len", "128", "--bucket", "16", "--dim", "16", "--rounds", "2", "--causal"]
    )

    assert set(times) == {"reformer-pytorch", "reformer-ko"} and all(len(t) == 2 for t in times.values())
