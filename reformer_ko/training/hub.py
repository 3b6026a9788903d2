"""What a run uploads with `--push_to_hub`: every upload of a model is a whole model.

With `--hub_strategy every_save` (the default), `checkpoint` or `all_checkpoints`, transformers uploads the output
directory after each checkpoint, having copied into it the checkpoint's config and weights and saved the tokenizer
there. A reformer-ko model also needs its code (the modules `auto_map` names and their relative imports: without
them `trust_remote_code=True` cannot load it) and, for ELECTRA, its generator (`generator/`).
`CheckpointPushFiles` copies those from the checkpoint first; the upload of the final model needs nothing more,
since the output directory then holds a whole saved model.
"""

import json
import os
import shutil
from pathlib import Path

from transformers import TrainerCallback
from transformers.dynamic_module_utils import get_relative_import_files
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..electra import GENERATOR_DIR
from ..files import move_contents
from .checkpoints import STAGING_DIR


def model_code_files(model_dir) -> list[str]:
    """The code files a saved model's `trust_remote_code=True` loading runs: the modules its `config.json`'s
    `auto_map` names, and the modules they import relatively, by name."""
    model_dir = Path(model_dir)
    auto_map = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("auto_map") or {}
    modules = {model_dir / f"{reference.split('.')[0]}.py" for reference in auto_map.values()}
    imported = {Path(path) for module in modules if module.is_file() for path in get_relative_import_files(module)}
    return sorted(path.name for path in modules | imported)


def copy_model_code_and_generator(checkpoint_dir, output_dir):
    """Copy a checkpoint's model code and `generator/` into the output directory, each file replaced in one rename."""
    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    for name in model_code_files(checkpoint_dir):
        temporary = output_dir / f".{name}.tmp"
        shutil.copyfile(checkpoint_dir / name, temporary)
        os.replace(temporary, output_dir / name)
    if (checkpoint_dir / GENERATOR_DIR).is_dir():
        staged = output_dir / STAGING_DIR / GENERATOR_DIR
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(checkpoint_dir / GENERATOR_DIR, staged)
        move_contents(staged, output_dir / GENERATOR_DIR)
        shutil.rmtree(output_dir / STAGING_DIR, ignore_errors=True)


class CheckpointPushFiles(TrainerCallback):
    """Before transformers uploads the output directory from a checkpoint, puts the checkpoint's model code and
    ELECTRA's generator there beside the config and weights it copies itself. `on_push_begin` runs on the main
    process once the checkpoint is written (and before the final `push_to_hub`, where the model is in place
    already); an earlier upload still running may read the directory meanwhile (`--hub_always_push`)."""

    def on_push_begin(self, args, state, control, **kwargs):
        checkpoint_dir = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if (checkpoint_dir / "config.json").is_file():
            copy_model_code_and_generator(checkpoint_dir, args.output_dir)
