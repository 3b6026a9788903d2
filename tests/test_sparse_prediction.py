"""Sparse prediction: reformer-ko's masked-LM training runs the LM head only at the labelled positions, while every
other caller (transformers' Trainer and scripts, pipelines) gets full-shape logits from the same checkpoint."""

import json

import numpy as np
import pytest
import torch
from pretraining_fixtures import CORPUS, TINY_MLM, small_tokenizer
from tiny_models import tiny_config
from transformers import AutoModelForMaskedLM, Trainer, TrainingArguments

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko.cli import main
from reformer_ko.commands import pretrain
from reformer_ko.modeling_reformer_ko import ReformerKoLMHead


@pytest.fixture
def lm_head_inputs(monkeypatch):
    """The shape of every input of a masked-LM head, as it runs."""
    shapes = []
    forward = ReformerKoLMHead.forward

    def recording_forward(self, hidden_states):
        shapes.append(tuple(hidden_states.shape))
        return forward(self, hidden_states)

    monkeypatch.setattr(ReformerKoLMHead, "forward", recording_forward)
    return shapes


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_pretrain_mlm_runs_the_lm_head_at_the_labelled_positions_only_with_sparse_prediction(
    sparse, lm_head_inputs, tmp_path
):
    metrics = pretrain.mlm(
        [
            "--config_preset", "mlm-small", "--config_overrides", f"{TINY_MLM},sparse_prediction={str(sparse).lower()}",
            "--tokenizer_name", str(small_tokenizer(tmp_path / "tokenizer")), "--train_file", str(CORPUS),
            "--validation_split_percentage", "10", "--max_train_samples", "4", "--max_eval_samples", "2",
            "--max_seq_length", "64", "--do_train", "--do_eval", "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--output_dir",
            str(tmp_path / "mlm"), "--use_cpu", "--report_to", "none", "--save_strategy", "no", "--seed", "0",
        ],
        log_file=tmp_path / "log.txt",
    )  # fmt: skip
    assert 0 <= metrics["eval_masked_token_accuracy"] <= 1
    # 2 training steps of 4 blocks and 1 eval batch of 2 blocks, 64 tokens each (15% of them labelled)
    if sparse:
        assert len(lm_head_inputs) == 3 and all(len(shape) == 2 for shape in lm_head_inputs)
        assert all(0 < rows < 0.3 * blocks * 64 for (rows, _), blocks in zip(lm_head_inputs, [4, 4, 2]))
    else:
        assert lm_head_inputs == [(4, 64, 64), (4, 64, 64), (2, 64, 64)]


def run_mlm_preprocess_logits_for_metrics(logits, labels):
    """transformers' examples/pytorch/language-modeling/run_mlm.py: keep the argmax of full-shape logits."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def run_mlm_compute_metrics(eval_preds):
    """run_mlm.py's accuracy: predictions indexed by the labels' mask (an IndexError if their shapes differ)."""
    preds, labels = eval_preds
    labels, preds = labels.reshape(-1), preds.reshape(-1)
    mask = labels != -100
    return {"accuracy": float(np.mean(preds[mask] == labels[mask]))}


def test_transformers_run_mlm_evaluation_works_on_a_checkpoint_saved_with_sparse_prediction(tmp_path):
    ReformerKoForMaskedLM(tiny_config(sparse_prediction=True)).save_pretrained(tmp_path / "model")
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "model")
    assert model.config.sparse_prediction
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 120, (6, 32), generator=generator)
    labels = torch.where(torch.rand(6, 32, generator=generator) < 0.15, input_ids, -100)
    args = TrainingArguments(
        tmp_path / "eval", per_device_eval_batch_size=4, report_to=[], use_cpu=True, disable_tqdm=True
    )
    trainer = Trainer(
        model=model,
        args=args,
        eval_dataset=[{"input_ids": ids, "labels": label} for ids, label in zip(input_ids, labels)],
        compute_metrics=run_mlm_compute_metrics,
        preprocess_logits_for_metrics=run_mlm_preprocess_logits_for_metrics,
    )
    metrics = trainer.evaluate()
    with torch.no_grad():
        predicted = model(input_ids).logits.argmax(-1)
    expected = (predicted[labels != -100] == labels[labels != -100]).float().mean().item()
    assert metrics["eval_accuracy"] == pytest.approx(expected)


def test_the_demo_pretrains_its_masked_lm_with_sparse_prediction(lm_head_inputs, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--steps", "2", "--qa-steps", "2", "--output-dir", str(out)]) == 0
    assert json.loads((out / "mlm" / "config.json").read_text())["sparse_prediction"] is True
    # every masked-LM head call of the demo (training and evaluation) ran at the masked positions only
    assert lm_head_inputs and all(len(shape) == 2 for shape in lm_head_inputs)
