"""The generation benchmarks (benchmarks/generation.py, benchmarks/generation_quality.py), run at tiny sizes so
that they cannot rot."""

import json
from pathlib import Path

from pretraining_fixtures import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_speed_benchmark_times_every_implementation_at_every_prompt(tmp_path):
    report = load_script(BENCHMARKS / "generation.py").main(["--dry-run", "--out", str(tmp_path)])
    measured = {(row["prompt"], row["impl"]) for row in report["rows"]}
    implementations = {"reformer-ko cached", "reformer-ko uncached", "transformers Reformer cached"}
    assert measured == {(prompt, impl) for prompt in (32, 64) for impl in implementations}
    assert all(row["tokens_per_s"] > 0 and row["first_token_s"] > 0 for row in report["rows"])
    cached = [row for row in report["rows"] if row["impl"] == "reformer-ko cached"]
    assert all(row["cache_bytes"] > 0 and 0 <= row["identical_to_uncached"] <= 1 for row in cached)
    assert json.loads((tmp_path / "generation_cpu_dry_run.json").read_text())["rows"] == report["rows"]
    assert "| reformer-ko cached |" in (tmp_path / "generation_cpu_dry_run.md").read_text()


def test_the_quality_benchmark_scores_perplexity_and_greedy_agreement(tmp_path):
    report = load_script(BENCHMARKS / "generation_quality.py").main(["--dry-run", "--out", str(tmp_path)])
    assert [row["prompt_tokens"] for row in report["perplexity"]] == [1, 16]
    for row in report["perplexity"]:
        assert row["perplexity_full_forward"] > 1 and row["perplexity_through_cache"] > 1
    assert 0 <= report["greedy"]["identical_tokens"] <= 1
    assert (tmp_path / "generation_quality_dry_run.md").read_text().startswith("## Generation through the cache")
