"""Nothing a run can lose: every training command, killed (SIGKILL) at any moment — in a step, in the middle of
writing a checkpoint, before the checkpoint is recorded complete, in the middle of moving the final model into
place — and run again with the same command, continues from its last complete checkpoint and ends with the losses
and the weights of a run that was never killed. An output directory holding anything else is refused."""

import json
import signal

import pytest
import torch
from pretraining_fixtures import CORPUS, EXAMPLES, common_arguments, logged_losses, run_python, small_tokenizer
from safetensors.torch import load_file
from tiny_models import tiny_config
from transformers import AutoTokenizer, TrainingArguments

from reformer_ko import ReformerKoForMaskedLM
from reformer_ko.data import load_corpus, mlm_collator, pack_mlm_blocks
from reformer_ko.electra import ElectraPretrainingModel
from reformer_ko.errors import UserInputError
from reformer_ko.training import ELECTRA, BatchSeededCollator, PretrainingTrainer, check_output_dir
from reformer_ko.training.checkpoints import COMPLETION_RECORD, RUN_RECORD, is_complete

DEMO_DATA = CORPUS.parent
# Dropout on, so that a resumed run only matches if the random state was restored too.
TINY = "hidden_size=32,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=128,bucket_size=16,num_hashes=2"
TINY_WITH_DROPOUT = TINY + ",hidden_dropout_prob=0.1"
STEPS, SAVE_EVERY = 12, 4

# Runs a training script and kills its process with SIGKILL at the moment KILL_AT names (see MOMENTS).
KILLER = """
import os, runpy, signal, sys
from pathlib import Path
from transformers import Trainer
import reformer_ko.training.checkpoints as checkpoints
import reformer_ko.training.trainer as trainer_module

kind, _, step = os.environ["KILL_AT"].partition(":")
step = int(step or 0)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "in-step":  # in the middle of training, between two checkpoints
    training_step = Trainer.training_step
    def in_step(self, *args, **kwargs):
        if self.state.global_step == step:
            die()
        return training_step(self, *args, **kwargs)
    Trainer.training_step = in_step
elif kind == "checkpoint-weights-only":  # checkpoint-N has the model, not the optimizer, RNG or trainer state
    save_optimizer = Trainer._save_optimizer_and_scheduler
    def weights_only(self, output_dir):
        if self.state.global_step == step:
            die()
        return save_optimizer(self, output_dir)
    Trainer._save_optimizer_and_scheduler = weights_only
elif kind == "checkpoint-unrecorded":  # checkpoint-N is fully written, not yet recorded complete
    record_completion = checkpoints.record_completion
    def unrecorded(checkpoint_dir):
        if Path(checkpoint_dir).name == f"checkpoint-{step}":
            die()
        return record_completion(checkpoint_dir)
    checkpoints.record_completion = unrecorded
elif kind == "final-model-half-moved":  # half the final model's files are in place
    def half_moved(source, destination):
        names = sorted(os.listdir(source))
        for name in names[: len(names) // 2]:
            os.replace(os.path.join(source, name), os.path.join(destination, name))
        die()
    trainer_module.move_contents = half_moved

script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""
MOMENTS = {
    "in-step": "in-step:6",
    "checkpoint-weights-only": f"checkpoint-weights-only:{2 * SAVE_EVERY}",
    "checkpoint-unrecorded": f"checkpoint-unrecorded:{2 * SAVE_EVERY}",
    "final-model-half-moved": "final-model-half-moved",
}
# Every moment for the masked LM; for the other commands the two that differ most (a checkpoint caught half written,
# the final model caught half moved): the machinery is the same.
CASES = [("mlm", moment) for moment in MOMENTS] + [
    (command, moment)
    for command in ("clm", "electra", "korquad")
    for moment in ("checkpoint-weights-only", "final-model-half-moved")
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return small_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def mlm_checkpoint(tokenizer_dir, tmp_path_factory):
    """A tiny masked LM and its tokenizer, for KorQuAD to start from."""
    directory = tmp_path_factory.mktemp("mlm-checkpoint")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    ReformerKoForMaskedLM(tiny_config(vocab_size=len(tokenizer), max_position_embeddings=128)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def training_command(command, tokenizer_dir, mlm_checkpoint, output_dir, cache_dir):
    """The arguments of a small run of `command` that checkpoints every SAVE_EVERY steps and keeps two."""
    schedule = [
        "--do_train", "--max_steps", STEPS, "--save_steps", SAVE_EVERY, "--save_total_limit", 2,
        "--per_device_train_batch_size", 4, "--learning_rate", "3e-3", "--logging_steps", 1,
    ]  # fmt: skip
    if command == "korquad":
        return [
            EXAMPLES / "run_korquad.py", "--model_name_or_path", mlm_checkpoint,
            "--train_file", DEMO_DATA / "korquad_train.json", "--max_train_samples", 24,
            "--max_seq_length", 128, "--doc_stride", 32, "--max_query_length", 24,
            "--output_dir", output_dir, "--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--seed", 0,
            *schedule,
        ]  # fmt: skip
    preset = {"mlm": "mlm-small", "clm": "clm-gpt3-small", "electra": "electra-small-discriminator"}[command]
    overrides = TINY_WITH_DROPOUT + (",embedding_size=16" if command == "electra" else "")
    if command == "clm":
        overrides += ",axial_position_shape=[8,16]"
    return [
        EXAMPLES / f"run_{command}.py",
        *common_arguments(tokenizer_dir, output_dir, cache_dir),
        "--config_preset", preset, "--config_overrides", overrides,
        "--validation_split_percentage", 0, "--max_train_samples", 24,
        *(["--block_size", 64] if command == "clm" else ["--max_seq_length", 64]),
        *schedule,
    ]  # fmt: skip


def final_weights(output_dir):
    return load_file(output_dir / "model.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tokenizer_dir, mlm_checkpoint, tmp_path_factory):
    """command -> (losses by step, final weights) of a run that was never killed."""
    runs = {}
    for command in ("mlm", "clm", "electra", "korquad"):
        root = tmp_path_factory.mktemp(f"uninterrupted-{command}")
        run_python(training_command(command, tokenizer_dir, mlm_checkpoint, root / "output", root / "cache"), root)
        runs[command] = logged_losses(root / "output"), final_weights(root / "output")
    return runs


@pytest.mark.parametrize("command, moment", CASES, ids=[f"{command}-{moment}" for command, moment in CASES])
def test_a_killed_run_continues_to_the_same_losses_and_weights(
    command, moment, tokenizer_dir, mlm_checkpoint, uninterrupted, tmp_path, monkeypatch
):
    output_dir = tmp_path / "output"
    arguments = training_command(command, tokenizer_dir, mlm_checkpoint, output_dir, tmp_path / "cache")
    with monkeypatch.context() as patch:
        patch.setenv("KILL_AT", MOMENTS[moment])
        killed = run_python(["-c", KILLER, *arguments], tmp_path, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    # Whatever the moment, nothing incomplete looks complete.
    for checkpoint in output_dir.glob("checkpoint-*"):
        if (checkpoint / COMPLETION_RECORD).exists():
            assert is_complete(checkpoint)

    rerun = run_python(arguments, tmp_path)  # the same command
    losses, weights = uninterrupted[command]
    assert logged_losses(output_dir) == pytest.approx(losses, rel=1e-6)
    resumed_weights = final_weights(output_dir)
    assert resumed_weights.keys() == weights.keys()
    for name, tensor in weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-6, atol=1e-7)
    assert "continuing it from" in rerun.stdout + rerun.stderr
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert [path.name for path in checkpoints] == [f"checkpoint-{STEPS - SAVE_EVERY}", f"checkpoint-{STEPS}"]
    assert all(is_complete(path) for path in checkpoints)
    assert not (output_dir / "_incomplete").exists()


def directory_state(directory):
    """Every file under `directory` with its size and modification time."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_fine_tuning_into_the_pretrained_models_directory_is_refused_and_changes_nothing(
    tokenizer_dir, mlm_checkpoint, tmp_path
):
    model_dir = tmp_path / "base"
    run_python(training_command("mlm", tokenizer_dir, None, model_dir, tmp_path / "cache"), tmp_path)
    before = directory_state(model_dir)
    arguments = training_command("korquad", tokenizer_dir, model_dir, model_dir, tmp_path / "cache")
    result = run_python(arguments, tmp_path, check=False)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("run_korquad.py: error: --output_dir") and "'pretrain mlm' run" in message
    assert "--overwrite_output_dir" in message and "Traceback" not in result.stderr
    assert directory_state(model_dir) == before


@pytest.mark.parametrize("foreign", ["README.md", "config.json"])
def test_a_directory_holding_files_it_did_not_write_is_refused_unless_told(foreign, tokenizer_dir, tmp_path):
    output_dir = tmp_path / "output"
    output_dir.mkdir()
    (output_dir / foreign).write_text("someone's file\n")
    arguments = TrainingArguments(output_dir=str(output_dir), do_train=True, use_cpu=True, report_to="none")
    with pytest.raises(UserInputError, match=f"files this run did not write \\({foreign}\\).*--overwrite_output_dir"):
        check_output_dir(arguments, "pretrain mlm")
    arguments.overwrite_output_dir = True
    assert check_output_dir(arguments, "pretrain mlm") is None


def test_resuming_from_an_older_checkpoint_than_the_newest_is_refused(tokenizer_dir, tmp_path):
    output_dir = tmp_path / "output"
    arguments = training_command("mlm", tokenizer_dir, None, output_dir, tmp_path / "cache")
    run_python(arguments, tmp_path)
    older = output_dir / f"checkpoint-{STEPS - SAVE_EVERY}"
    result = run_python([*arguments, "--resume_from_checkpoint", older], tmp_path, check=False)
    assert result.returncode == 1
    assert f"checkpoint-{STEPS} in {output_dir} are newer than {older}" in result.stderr
    assert (output_dir / f"checkpoint-{STEPS}").is_dir()


def test_resume_from_last_needs_a_complete_checkpoint(tmp_path):
    (tmp_path / RUN_RECORD).write_text(json.dumps({"command": "pretrain mlm"}))
    (tmp_path / "checkpoint-5").mkdir()  # killed before its trainer state was written
    arguments = TrainingArguments(
        output_dir=str(tmp_path), resume_from_checkpoint="last", use_cpu=True, report_to="none"
    )
    with pytest.raises(UserInputError, match="holds no complete checkpoint-N directory"):
        check_output_dir(arguments, "pretrain mlm")


def test_in_a_run_s_own_directory_a_checkpoint_counts_only_with_its_completion_record(tmp_path):
    checkpoint = tmp_path / "output" / "checkpoint-5"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 5}))
    assert is_complete(checkpoint)  # a checkpoint from elsewhere: its trainer state is the last file written
    (tmp_path / "output" / RUN_RECORD).write_text(json.dumps({"command": "pretrain mlm"}))
    assert not is_complete(checkpoint)  # reformer-ko's own: killed before its files were flushed and recorded


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
