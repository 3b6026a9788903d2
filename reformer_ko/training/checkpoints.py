"""What a training run writes and how it is found again, so that no run loses a file.

- A checkpoint counts only once complete: when the Trainer has written all of it, `CheckpointCompletion` (a
  callback) flushes it to disk and writes `checkpoint_complete.json`, the list of its files and their sizes. A run
  killed at any moment leaves either complete checkpoints or directories without that record, which nothing
  resumes from and the next run deletes.
- An output directory belongs to one run: `claim_output_dir` writes a run record (`_reformer_ko_run.json`, the
  command that trains into it) and `check_output_dir` refuses a directory holding files of anything else (a model it was asked to
  load, another task's run, a README) unless `--overwrite_output_dir`. The same command run again continues from
  the last complete checkpoint, so a killed run resumes and checkpoint rotation only ever deletes checkpoints of
  the run it continues.
- Files are written beside their final place and renamed into it (`reformer_ko.files`).
"""

import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..errors import UserInputError
from ..files import fsync_tree, write_atomically
from ..version import __version__

logger = logging.getLogger(__name__)

COMPLETION_RECORD = "checkpoint_complete.json"
RUN_RECORD = "_reformer_ko_run.json"
# The final model is written here first, then moved into the output directory.
STAGING_DIR = "_incomplete"
_CHECKPOINT_NAME = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


# Checkpoints -----------------------------------------------------------------------------------------------------


def checkpoint_step(path) -> int | None:
    """The step of a `checkpoint-N` directory name, else None."""
    match = _CHECKPOINT_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def checkpoints(output_dir) -> list[Path]:
    """The `checkpoint-N` directories of `output_dir`, oldest step first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and checkpoint_step(path) is not None]
    return sorted(found, key=checkpoint_step)


def record_completion(checkpoint_dir):
    """Flush the checkpoint to disk, then write the list of its files and sizes: from now on it is complete."""
    checkpoint_dir = Path(checkpoint_dir)
    fsync_tree(checkpoint_dir)
    files = {
        str(path.relative_to(checkpoint_dir)): path.stat().st_size
        for path in sorted(checkpoint_dir.rglob("*"))
        if path.is_file() and path.name != COMPLETION_RECORD
    }
    write_atomically(checkpoint_dir / COMPLETION_RECORD, json.dumps({"files": files}, indent=1, sort_keys=True))


def is_complete(checkpoint_dir) -> bool:
    """Whether a checkpoint is whole: its completion record lists files that are all there at their sizes. In an
    output directory a reformer-ko run owns (it holds the run record) the record is required. A checkpoint from
    elsewhere (transformers' own Trainer, an earlier reformer-ko) counts as whole when its `trainer_state.json`,
    the last file the Trainer writes, reads as JSON."""
    checkpoint_dir = Path(checkpoint_dir)
    record = checkpoint_dir / COMPLETION_RECORD
    try:
        if not record.exists():
            if (checkpoint_dir.parent / RUN_RECORD).exists():
                return False
            json.loads((checkpoint_dir / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
            return True
        files = json.loads(record.read_text(encoding="utf-8"))["files"]
        return all(
            (checkpoint_dir / name).is_file() and (checkpoint_dir / name).stat().st_size == size
            for name, size in files.items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def last_complete_checkpoint(output_dir) -> Path | None:
    """The complete checkpoint of the highest step in `output_dir`, or None."""
    complete = [path for path in checkpoints(output_dir) if is_complete(path)]
    return complete[-1] if complete else None


class CheckpointCompletion(TrainerCallback):
    """Marks each checkpoint complete once every process has written its part (`record_completion`).

    `on_save` runs right after the Trainer has written the checkpoint (model, optimizer, RNG and trainer state) and
    pushed it; the main process records it, the others wait, so a kill before the record leaves a checkpoint that
    resuming ignores."""

    def on_save(self, args, state, control, **kwargs):
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        if state.is_world_process_zero:
            checkpoint_dir = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if checkpoint_dir.is_dir():
                record_completion(checkpoint_dir)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()


# Output directories ----------------------------------------------------------------------------------------------


def read_run_record(output_dir) -> dict | None:
    """The run record of `output_dir` (a dict with the command), or None where there is none or it is unreadable."""
    try:
        record = json.loads((Path(output_dir) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("command"), str) else None


def _foreign_files(output_dir) -> list[str]:
    """What the output directory holds besides a run record."""
    return sorted(entry.name for entry in Path(output_dir).iterdir() if entry.name != RUN_RECORD)


def _delete(paths, reason):
    for path in paths:
        logger.warning(f"Deleting {path} ({reason}).")
        if Path(path).is_dir():
            shutil.rmtree(path)
        else:
            os.remove(path)


def check_output_dir(training_args, command: str) -> str | None:
    """Whether this run may train into `training_args.output_dir`, and the checkpoint to resume from (None: start
    anew). Reads only; `claim_output_dir` writes.

    `command` names what trains into the directory (e.g. "pretrain mlm"). A directory that is missing, empty, or
    holds a run of the same command is this run's: the run continues from `--resume_from_checkpoint` (a path, or
    `last`), else from the last complete checkpoint there. Anything else is refused unless
    `--overwrite_output_dir`, with which the directory's checkpoints (but the one resumed from) will be deleted.
    """
    output_dir = Path(training_args.output_dir)
    overwrite = getattr(training_args, "overwrite_output_dir", False)
    if output_dir.exists() and not output_dir.is_dir():
        raise UserInputError(f"--output_dir {output_dir} is a file: give a directory.")
    record = read_run_record(output_dir) if output_dir.is_dir() else None
    ours = record is not None and record.get("command") == command
    foreign = _foreign_files(output_dir) if output_dir.is_dir() else []
    if foreign and not ours and not overwrite:
        what = f"a {record['command']!r} run" if record else f"files this run did not write ({', '.join(foreign[:5])})"
        raise UserInputError(
            f"--output_dir {output_dir} holds {what}. Give another --output_dir, or pass --overwrite_output_dir to "
            "train into it anyway (its checkpoints are deleted, its other files overwritten)."
        )
    resume = _requested_checkpoint(training_args.resume_from_checkpoint, output_dir)
    # With --overwrite_output_dir the directory's checkpoints are to be deleted: none is continued or protected.
    complete = [] if overwrite else [path for path in checkpoints(output_dir) if is_complete(path)]
    if resume is None and ours and complete:
        resume = str(complete[-1])
        logger.warning(
            f"{output_dir} holds a run of this command: continuing it from {resume}. To start over instead, pass "
            "--overwrite_output_dir or give another --output_dir."
        )
    if resume is not None:
        resumed_step = json.loads((Path(resume) / TRAINER_STATE_NAME).read_text(encoding="utf-8"))["global_step"]
        newer = [path.name for path in complete if checkpoint_step(path) > resumed_step]
        if newer:
            raise UserInputError(
                f"{', '.join(newer)} in {output_dir} are newer than {resume}: a run resumed from it would overwrite "
                "them. Resume from the last one (--resume_from_checkpoint last), or pass --overwrite_output_dir to "
                "delete them."
            )
    return resume


def claim_output_dir(training_args, command: str, resume: str | None):
    """Make the output directory this run's, as `check_output_dir` decided: delete what a killed run left
    incomplete and, with `--overwrite_output_dir`, the earlier checkpoints (but `resume`); record the command.
    On the main process only; the others have nothing to do."""
    if training_args.process_index != 0:
        return
    output_dir = Path(training_args.output_dir)
    staging = [output_dir / STAGING_DIR] if (output_dir / STAGING_DIR).exists() else []
    _delete([path for path in checkpoints(output_dir) if not is_complete(path)] + staging, "left incomplete by a killed run")
    if getattr(training_args, "overwrite_output_dir", False):
        kept = Path(resume).resolve() if resume else None
        _delete([path for path in checkpoints(output_dir) if path.resolve() != kept], "--overwrite_output_dir")
    output_dir.mkdir(parents=True, exist_ok=True)
    record = read_run_record(output_dir)
    if record is None or record.get("command") != command:
        write_atomically(output_dir / RUN_RECORD, json.dumps({"command": command, "reformer_ko": __version__}) + "\n")


def _requested_checkpoint(value, output_dir: Path) -> str | None:
    """`--resume_from_checkpoint`: a complete checkpoint directory, or `last` / `true` for the newest in `output_dir`."""
    if value is None:
        return None
    value = str(value)
    if value.lower() in ("last", "true"):
        last = last_complete_checkpoint(output_dir)
        if last is None:
            raise UserInputError(
                f"--resume_from_checkpoint {value}: {output_dir} holds no complete checkpoint-N directory. Drop the "
                "option to start a new run."
            )
        return str(last)
    if not Path(value).is_dir():
        raise UserInputError(f"--resume_from_checkpoint: {value} is not a directory; give a checkpoint-N directory.")
    if not is_complete(value):
        raise UserInputError(
            f"--resume_from_checkpoint: {value} is not a complete checkpoint (no readable trainer_state.json, or its "
            "run was killed while saving it); give another, or `last`."
        )
    return value
