"""What reformer-ko's Trainer relies on in transformers' `Trainer`, checked so that an upgrade that changes it fails
here, loudly, rather than in a user's run.

`ReformerKoTrainer` overrides public methods only (`train`, `compute_loss`, `training_step`, `save_model`,
`create_model_card`) and adds a callback; `PretrainingTrainer` overrides one private method, `_load_from_checkpoint`, because the Trainer
loads a checkpoint's `model.safetensors` into the model it trains while an ELECTRA checkpoint keeps its generator in
`generator/`."""

import inspect

import pytest
from transformers import Trainer, TrainerCallback

from reformer_ko.training import PretrainingTrainer, ReformerKoTrainer


def parameters(function):
    return list(inspect.signature(function).parameters)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("train", ["self", "resume_from_checkpoint", "trial", "ignore_keys_for_eval"]),
        ("compute_loss", ["self", "model", "inputs", "return_outputs", "num_items_in_batch"]),
        ("training_step", ["self", "model", "inputs", "num_items_in_batch"]),
        ("save_model", ["self", "output_dir", "_internal_call"]),
        ("_load_from_checkpoint", ["self", "resume_from_checkpoint", "model"]),
    ],
)
def test_the_overridden_trainer_methods_keep_their_signature(name, expected):
    assert parameters(getattr(Trainer, name)) == expected
    owner = PretrainingTrainer if name == "_load_from_checkpoint" else ReformerKoTrainer
    assert parameters(getattr(owner, name)) == expected


def test_only_one_private_trainer_method_is_overridden():
    overridden = {
        name
        for cls in (ReformerKoTrainer, PretrainingTrainer)
        for name in vars(cls)
        if name.startswith("_") and not name.startswith("__") and hasattr(Trainer, name)
    }
    assert overridden == {"_load_from_checkpoint"}


def test_checkpoints_are_announced_to_callbacks_after_they_are_written():
    # CheckpointCompletion records a checkpoint complete in `on_save`, which must follow the whole checkpoint.
    source = inspect.getsource(Trainer._maybe_log_save_evaluate)
    assert source.index("self._save_checkpoint(") < source.index("self.callback_handler.on_save(")
    assert "on_save" in vars(TrainerCallback)
