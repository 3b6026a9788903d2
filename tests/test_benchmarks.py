"""The benchmarks (benchmarks/: the training-step harness, its shared modules, the one-case scripts and the GPU
entry point), run at tiny sizes so that they cannot rot."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from pretraining_fixtures import load_script

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of scripts and their shared modules, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import models, overhead, timing  # noqa: E402

HARNESS = REPO / "benchmarks" / "train_step.py"
RUN_GPU = HARNESS.parent / "run_gpu.sh"


@pytest.fixture(scope="module")
def train_step():
    return load_script(HARNESS)


def test_dry_run_times_every_implementation_and_writes_the_reports(train_step, tmp_path):
    # bf16 autocast, as on the GPU, so that a dtype mismatch in any implementation shows up here.
    report = train_step.main(
        [
            "--dry-run",
            "--in-process",
            "--dtype",
            "bf16",
            "--profile-steps",
            "1",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ]
    )

    impls = {task: sorted(row["impl"] for row in report["rows"] if row["task"] == task) for task in ("tiny-mlm", "tiny-clm")}
    assert impls["tiny-mlm"] == sorted(list(models.IMPLEMENTATIONS) * 2)  # at 64 and at 128 tokens
    assert impls["tiny-clm"] == sorted(set(models.IMPLEMENTATIONS) - models.MLM_ONLY)
    assert all(row["status"] == "ok" and row["tokens_per_s"] > 0 for row in report["rows"]), report["rows"]
    assert [check["task"] for check in report["overhead"]] == ["tiny-mlm", "tiny-clm"]
    for check in report["overhead"]:
        assert check["status"] == "ok", check
        assert set(check["ratio_to_reformer_pytorch"]) == set(overhead.OVERHEAD_MODELS) - {"reformer-pytorch"}
        assert check["profile_matched_vs_raw"]["top"] and check["profile_matched_vs_rp_attn"]["top"]
    assert json.loads((tmp_path / "train_step_dry_run.json").read_text())["rows"] == report["rows"]
    markdown = (tmp_path / "train_step_dry_run.md").read_text()
    assert "| ko / rp | ko / sdpa |" in markdown and "Wrapper overhead" in markdown


def test_matched_weights_load_into_raw_reformer_pytorch():
    task = models.TASKS["tiny-mlm"]
    matched, _ = models.build_reformer_ko_matched(task, 64)
    raw, _ = models.build_reformer_pytorch(task, 64)

    models.copy_into_reformer_pytorch(matched, raw)  # strict: every raw parameter gets a value

    assert torch.equal(raw.token_emb.weight, matched.reformer.embeddings.word_embeddings.weight)
    assert sum(p.numel() for p in raw.parameters()) == sum(p.numel() for p in matched.parameters())


def test_out_of_memory_is_a_row_not_a_crash(monkeypatch):
    def out_of_memory(task, seq_len):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")

    monkeypatch.setitem(models.IMPLEMENTATIONS, "sdpa", out_of_memory)
    case = dict(task="tiny-mlm", seq_len=64, batch=2, impl="sdpa")

    row = timing.run_case(case, "cpu", "fp32", warmup=0, steps=1)

    assert row["status"] == "oom"


def test_an_interrupted_run_reports_what_it_measured(train_step, monkeypatch, tmp_path):
    # benchmarks/run_gpu.sh stops a part past its time limit with SIGINT: the rows measured so far must come back.
    run_case = train_step.run_case
    done = []

    def interrupted_after_two(case, *args, **kwargs):
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(case)
        return run_case(case, *args, **kwargs)

    monkeypatch.setattr(train_step, "run_case", interrupted_after_two)
    arguments = ["--dry-run", "--in-process", "--overhead-rounds", "0", "--impls", "reformer-ko", "sdpa"]
    report = train_step.main([*arguments, "--threads", "1", "--out", str(tmp_path)])

    assert report["interrupted"] and [row["impl"] for row in report["rows"]] == ["reformer-ko", "sdpa"]
    assert json.loads((tmp_path / "train_step_dry_run.json").read_text())["rows"] == report["rows"]
    assert "Interrupted (a time limit)" in (tmp_path / "train_step_dry_run.md").read_text()


def test_a_cpu_case_runs_in_its_own_process():
    case = dict(task="tiny-mlm", seq_len=64, batch=1, impl="reformer-ko")

    row = timing.run_case_in_subprocess(case, "cpu", "fp32", warmup=0, steps=1, threads=1)

    assert row["status"] == "ok", row
    assert row["peak_mem_bytes"] >= row["base_mem_bytes"] > 0


def test_the_attention_overhead_script_times_both_attentions():
    module = load_script(HARNESS.parent / "lsh_attention_overhead.py")

    times = module.main(
        ["--batch", "2", "--seq-len", "128", "--bucket", "16", "--dim", "16", "--rounds", "2", "--causal"]
    )

    assert set(times) == {"reformer-pytorch", "reformer-ko"} and all(len(t) == 2 for t in times.values())


def test_the_attention_overhead_script_lists_the_operators_that_differ(capsys):
    module = load_script(HARNESS.parent / "lsh_attention_overhead.py")

    module.main(["--batch", "2", "--seq-len", "64", "--bucket", "16", "--dim", "16", "--rounds", "2", "--profile"])

    table = capsys.readouterr().out.split("| operator | reformer-ko ms | reformer-pytorch ms |")[1]
    assert "aten::" in table


def run_gpu_dry(tmp_path, *arguments, **settings):
    """benchmarks/run_gpu.sh with DRY_RUN=1 (every part on the CPU at tiny sizes), $OUT and $WORK in tmp_path."""
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = dict(os.environ, DRY_RUN="1", OUT=str(tmp_path / "out"), WORK=str(tmp_path / "work"), PATH=path, **settings)
    return subprocess.run(["bash", RUN_GPU, *arguments], env=env, capture_output=True, text=True, timeout=600)


def test_the_gpu_entry_point_packs_every_part_into_one_archive(tmp_path):
    # The one device call of a GPU session: a bug in the script would cost that session's GPU time, and the device
    # tool returns at most 8 files from $OUT.
    result = run_gpu_dry(tmp_path, "--tasks", "tiny-clm", "--overhead-rounds", "0", "--threads", "1")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    out = tmp_path / "out"
    assert sorted(path.name for path in out.rglob("*")) == ["gpu_results.tar.gz", "gpu_summary.txt"]
    with tarfile.open(out / "gpu_results.tar.gz") as archive:
        members = {member.name: member for member in archive.getmembers() if member.isfile()}

        def read_json(name):
            return json.loads(archive.extractfile(members[name]).read())

        assert read_json("flex_attention_gpu/gpu_flex_check.json")["passed"]
        rows = read_json("training_step_gpu/train_step_dry_run.json")["rows"]
        assert rows and all(row["status"] == "ok" for row in rows)
        for impl in ("reformer-ko-flex-sparse", "reformer-pytorch"):
            profile = read_json(f"step_profile_gpu/profile_{impl}_tiny-mlm_64x2_cpu.json")
            assert len(profile["parts"]) == 4 and all(ms > 0 for ms in profile["parts"].values()), profile["parts"]
            assert profile["operators"] and members[f"step_profile_gpu/profile_{impl}.log"].size > 0
        assert read_json("generation_gpu/generation_cpu_dry_run.json")
    summary = (out / "gpu_summary.txt").read_text()
    assert summary.count(": exit 0, ") == 5 and "archive: " in summary, summary


def test_a_failing_gpu_part_still_comes_back_in_the_archive(tmp_path):
    # With no time budget the flex check skips every section and fails: its report and log must still come back.
    result = run_gpu_dry(tmp_path, PARTS="flex", FLEX_BUDGET="0")

    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-4000:]
    with tarfile.open(tmp_path / "out" / "gpu_results.tar.gz") as archive:
        report = json.loads(archive.extractfile("flex_attention_gpu/gpu_flex_check.json").read())
        assert "flex_attention_gpu/gpu_flex_check.log" in archive.getnames()
    assert not report["passed"] and "equality" in report["skipped"]


def test_ab_step_alternates_implementations_and_gives_ratios_to_the_first(tmp_path):
    ab_step = load_script(HARNESS.parent / "ab_step.py")
    arguments = ["reformer-ko", "reformer-ko-sparse", "--task", "tiny-mlm", "--seq-len", "64", "--batch", "2"]
    result = ab_step.main([*arguments, "--warmup", "1", "--rounds", "3", "--threads", "1", "--out", str(tmp_path)])

    assert list(result["step_ms"]) == ["reformer-ko", "reformer-ko-sparse"]
    assert set(result["ratio_to_first"]) == {"reformer-ko-sparse"} and result["ratio_to_first"]["reformer-ko-sparse"]["median"] > 0
    written = json.loads((tmp_path / "ab_reformer-ko_vs_reformer-ko-sparse_tiny-mlm_64x2_cpu.json").read_text())
    assert written["ratio_to_first"] == result["ratio_to_first"]
    with pytest.raises(SystemExit):
        ab_step.parse_args(["reformer-ko"])
