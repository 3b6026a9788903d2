"""The frame of every training command: logging, then train / evaluate / predict, the model card or the push, and
the release of the processes, whatever fails on the way."""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import datasets
import transformers
from transformers import PrinterCallback, Trainer

from .checkpoints import claim_output_dir
from .trainer import ReformerKoTrainer

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"
# The loggers a training command writes to: with a log file, all of them go there.
LOGGERS = ("reformer_ko", "transformers", "datasets", "accelerate", "py.warnings")


def setup_logging(training_args, log_file=None):
    """transformers' example-script logging (INFO on the main process, warnings on the others) to standard output,
    or, with `log_file`, to that file only (the demo keeps its console for progress bars)."""
    if log_file is None:
        logging.basicConfig(format=LOG_FORMAT, datefmt="%m/%d/%Y %H:%M:%S", handlers=[logging.StreamHandler(sys.stdout)])
        transformers.utils.logging.enable_default_handler()
        transformers.utils.logging.enable_explicit_format()
    else:
        log_to_file(log_file)
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    # "passive" (the default --log_level) means the verbosity just set.
    log_level = training_args.get_process_log_level()
    logging.getLogger("reformer_ko").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.warning(
        f"Process rank {training_args.process_index} of {training_args.world_size}, device {training_args.device}, "
        f"bf16 {training_args.bf16}, fp16 {training_args.fp16}"
    )


# While logging to a file: logger name -> (its console handlers, whether it propagated), to restore them.
_console_logging = {}


def log_to_file(log_file):
    """Send the training loggers and Python warnings to `log_file` alone, and hide the libraries' progress bars."""
    path = str(Path(log_file).resolve())
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for name in LOGGERS:
        named = logging.getLogger(name)
        if name not in _console_logging:
            console = [h for h in named.handlers if not isinstance(h, logging.FileHandler)]
            _console_logging[name] = (console, named.propagate)
            for console_handler in console:
                named.removeHandler(console_handler)
        if not any(getattr(existing, "baseFilename", None) == path for existing in named.handlers):
            named.addHandler(handler)
        named.propagate = False
    logging.captureWarnings(True)
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def restore_console_logging():
    """Undo `log_to_file`: the loggers write to the console again, with progress bars."""
    for name, (console, propagate) in _console_logging.items():
        named = logging.getLogger(name)
        for handler in [h for h in named.handlers if isinstance(h, logging.FileHandler)]:
            named.removeHandler(handler)
            handler.close()
        for handler in console:
            named.addHandler(handler)
        named.propagate = propagate
    _console_logging.clear()
    logging.captureWarnings(False)
    transformers.utils.logging.enable_progress_bar()
    datasets.enable_progress_bars()


def end_training(trainer: Trainer):
    """Finish the trackers and destroy the process group (what newer transformers' `Trainer.end()` does), after
    releasing the DDP-wrapped model. A DDP reducer that outlives the process group destroys the group when it goes,
    holding the GIL while gloo's worker threads may need it: 2-process CPU runs hung at exit about 1 in 10."""
    trainer.model_wrapped = trainer.model
    trainer.accelerator.free_memory()
    trainer.accelerator.end_training()


def train_and_evaluate(
    trainer: ReformerKoTrainer,
    *,
    command: str,
    resume_from_checkpoint: str | None,
    train_metrics: dict | None = None,
    predict: Callable[[], dict] | None = None,
    card: dict | None = None,
    console: bool = True,
) -> dict:
    """Run the stages the arguments ask for and return every metric: train (into the output directory, claimed for
    `command`, from `resume_from_checkpoint`: see `checkpoints.check_output_dir`) and save the model, evaluate,
    `predict()` (a stage of the caller's), then
    write the model card (`card`: keyword arguments of `create_model_card`) or push to the Hub. The processes are
    released (`end_training`) even when a stage fails. Without `console`, metrics go to the log, not to print."""
    args = trainer.args
    metrics = trainer.final_metrics
    if not console:
        trainer.remove_callback(PrinterCallback)

    def report(split, stage_metrics):
        if console:
            trainer.log_metrics(split, stage_metrics)
        else:
            logger.info(f"{split} metrics: {stage_metrics}")
        trainer.save_metrics(split, stage_metrics)
        metrics.update(stage_metrics)

    try:
        if args.do_train:
            claim_output_dir(args, command, resume_from_checkpoint)
            result = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
            trainer.save_model()
            report("train", {**result.metrics, **(train_metrics or {})})
            trainer.save_state()
        if args.do_eval:
            report("eval", trainer.evaluate())
        if args.do_predict and predict is not None:
            report("predict", predict())
        if args.push_to_hub:
            trainer.push_to_hub(**(card or {}))
        elif args.do_train:
            trainer.create_model_card(**(card or {}))
    finally:
        end_training(trainer)
    return dict(metrics)
