"""Resuming: a run killed with SIGKILL continues exactly where its checkpoint left it, and a kill while saving never
leaves a checkpoint that looks complete."""

import signal
import subprocess
import sys
import time

import pytest
import torch
from pretraining_fixtures import (
    CORPUS,
    EXAMPLES,
    ROOT,
    common_arguments,
    logged_losses,
    run_python,
    script_environment,
    small_tokenizer,
)
from tiny_models import tiny_config
from transformers import AutoTokenizer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from reformer_ko.data import load_corpus, mlm_collator, pack_mlm_blocks
from reformer_ko.electra import ElectraPretrainingModel
from reformer_ko.training import ELECTRA, BatchSeededCollator, PretrainingTrainer, resume_checkpoint

# Dropout on, several epochs of 6 steps, a checkpoint in the middle of the second epoch.
TINY_WITH_DROPOUT = (
    "hidden_size=32,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=128,bucket_size=16,"
    "num_hashes=2,hidden_dropout_prob=0.1"
)
KILL_WHILE_SAVING_CHECKPOINT_20 = """
import os, runpy, signal, sys
from transformers import Trainer

save_rng_state = Trainer._save_rng_state

def killed_at_step_20(self, output_dir):
    # The model and the optimizer of checkpoint-20 are written; the RNG and trainer states are not.
    if self.state.global_step == 20:
        os.kill(os.getpid(), signal.SIGKILL)
    save_rng_state(self, output_dir)

Trainer._save_rng_state = killed_at_step_20
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return small_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def run_mlm_arguments(tokenizer_dir, output_dir, cache_dir, *extra):
    return [
        EXAMPLES / "run_mlm.py",
        *common_arguments(tokenizer_dir, output_dir, cache_dir),
        "--config_preset", "mlm-small",
        "--config_overrides", TINY_WITH_DROPOUT,
        "--validation_split_percentage", "0",
        "--max_train_samples", "24",
        "--do_train",
        "--max_steps", "30",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "3e-3",
        "--logging_steps", "1",
        "--save_steps", "10",
        *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted_losses(tokenizer_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    run_python(run_mlm_arguments(tokenizer_dir, root / "output", root / "cache"), root)
    return logged_losses(root / "output")


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_losses(tokenizer_dir, uninterrupted_losses, tmp_path):
    cache, interrupted = tmp_path / "cache", tmp_path / "interrupted"
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, *map(str, run_mlm_arguments(tokenizer_dir, interrupted, cache))],
            env=script_environment(tmp_path),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while not (interrupted / "checkpoint-10").is_dir() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (interrupted / "checkpoint-30").exists() and not (interrupted / "README.md").exists()

    run_python(
        run_mlm_arguments(tokenizer_dir, interrupted, cache, "--resume_from_checkpoint", interrupted / "checkpoint-10"),
        tmp_path,
    )
    # Steps 1-10 come from the checkpoint's history, 11-30 from the resumed run.
    resumed = logged_losses(interrupted)
    assert sorted(resumed) == sorted(uninterrupted_losses) == list(range(1, 31))
    assert resumed == pytest.approx(uninterrupted_losses, rel=1e-6)


def test_a_kill_while_saving_leaves_no_checkpoint_that_looks_complete(tokenizer_dir, uninterrupted_losses, tmp_path):
    output_dir, cache = tmp_path / "output", tmp_path / "cache"
    arguments = run_mlm_arguments(tokenizer_dir, output_dir, cache)
    killed = run_python(["-c", KILL_WHILE_SAVING_CHECKPOINT_20, *arguments], tmp_path, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (output_dir / "_incomplete" / "checkpoint-20" / "model.safetensors").is_file()  # it was being written
    assert not (output_dir / "checkpoint-20").exists()
    assert get_last_checkpoint(output_dir) == str(output_dir / "checkpoint-10")
    assert (output_dir / "checkpoint-10" / "trainer_state.json").is_file()

    run_python([*arguments, "--resume_from_checkpoint", "last"], tmp_path)
    assert logged_losses(output_dir) == pytest.approx(uninterrupted_losses, rel=1e-6)
    assert sorted(path.name for path in output_dir.glob("checkpoint-*")) == [
        "checkpoint-10",
        "checkpoint-20",
        "checkpoint-30",
    ]
    assert not (output_dir / "_incomplete").exists()


def test_resume_from_last_needs_a_checkpoint(tmp_path):
    arguments = TrainingArguments(
        output_dir=str(tmp_path), resume_from_checkpoint="last", use_cpu=True, report_to="none"
    )
    with pytest.raises(FileNotFoundError, match="holds no checkpoint-N directory"):
        resume_checkpoint(arguments)


def electra_trainer(tokenizer, blocks, output_dir, **arguments):
    torch.manual_seed(0)
    model = ElectraPretrainingModel(tiny_config(vocab_size=len(tokenizer), hidden_dropout_prob=0.1))
    args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=3e-3,
        logging_steps=1,
        save_steps=3,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **arguments,
    )
    collator = BatchSeededCollator(mlm_collator(tokenizer, pad_to_multiple_of=32), seed=0)
    return PretrainingTrainer(model=model, args=args, train_dataset=blocks, data_collator=collator, task=ELECTRA)


def test_electra_resumes_its_generator_and_discriminator_exactly(tokenizer_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    blocks = list(pack_mlm_blocks(load_corpus(CORPUS, cache_dir=tmp_path / "cache"), tokenizer, 64))[:16]
    uninterrupted = electra_trainer(tokenizer, blocks, tmp_path / "uninterrupted")
    uninterrupted.train()
    checkpoint = tmp_path / "uninterrupted" / "checkpoint-3"
    assert (checkpoint / "generator" / "model.safetensors").is_file()

    resumed = electra_trainer(tokenizer, blocks, tmp_path / "resumed")
    resumed.train(resume_from_checkpoint=str(checkpoint))

    def losses(trainer):
        return {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}

    assert sorted(losses(resumed)) == [1, 2, 3, 4, 5, 6]  # 1-3 from the checkpoint's history
    assert losses(resumed) == pytest.approx(losses(uninterrupted), rel=1e-6)
    final = uninterrupted.model.state_dict()
    for name, tensor in resumed.model.state_dict().items():
        torch.testing.assert_close(tensor, final[name], rtol=1e-6, atol=1e-7)
