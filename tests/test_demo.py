"""`reformer-ko demo` runs the whole road on the shipped data (a few steps each, so it stays fast)."""

import json

from reformer_ko.cli import main


def test_demo_runs_every_step_and_saves_a_hub_ready_checkpoint(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--all", "--steps", "6", "--qa-steps", "6", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = printed[printed.index("reformer-ko demo: summary") :]
    for step in ("tokenizer", "masked LM", "causal LM", "ELECTRA", "KorQuAD", "Hub-ready", "pipeline"):
        assert step in summary
    assert "EM " in summary and "F1 " in summary
    results = json.loads((out / "korquad" / "eval_results.json").read_text())
    assert {"eval_exact_match", "eval_f1"} <= results.keys()
    config = json.loads((out / "korquad" / "config.json").read_text())
    assert config["auto_map"]["AutoModelForQuestionAnswering"] == "modeling_reformer_ko.ReformerKoForQuestionAnswering"
    for name in ("model.safetensors", "tokenizer.json", "README.md", "modeling_reformer_ko.py"):
        assert (out / "korquad" / name).is_file()
