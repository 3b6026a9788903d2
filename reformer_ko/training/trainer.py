"""The Trainer of every reformer-ko training command: transformers' `Trainer`, and what no run may go without.

`ReformerKoTrainer` adds, through the Trainer's public extension points (callbacks, `train`, `compute_loss`,
`training_step`, `save_model`, `create_model_card`):
- DDP options that reformer-pytorch's reversible layers need (`distributed_defaults`);
- sparse prediction for a masked LM whose config asks for it: the LM head runs only at the labelled positions
  (`sparse_prediction=True` in every forward with labels; the metrics put the predictions back in place);
- a stop on a NaN or infinite training loss, before that step's update (`NonFiniteLossError`);
- no extra step when a run resumes from a checkpoint that already reached `--max_steps` (`train`);
- checkpoints that count only once complete, and a final model moved into place only once written
  (`checkpoints.py`);
- uploads (`--push_to_hub`) that each carry a whole model, its code included (`hub.py`);
- an error where `--fsdp` or `--deepspeed` would silently shard nothing (`refuse_unsharded_run`);
- the model card (`model_card.py`), whose task-specific parts each subclass gives in `card_content()`.

`PretrainingTrainer` adds the pretraining tasks' metrics and ELECTRA's two-model checkpoints; the KorQuAD trainer
(`reformer_ko.korquad.trainer`) adds answer post-processing and the official metric.
"""

import logging
import os
import shutil
from pathlib import Path

import torch
from transformers import Trainer, TrainerState
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import TrainOutput
from transformers.utils import SAFE_WEIGHTS_NAME

from ..electra import GENERATOR_DIR, ElectraPretrainingModel, load_weights_strictly
from ..errors import UserInputError
from ..modeling_reformer_ko import ReformerKoForMaskedLM
from ..tokenization import save_tokenizer
from ..files import fsync_tree, move_contents, write_atomically
from .checkpoints import STAGING_DIR, CheckpointCompletion
from .data import BatchSeededCollator, MaskingEpoch, TrainingData
from .hub import CheckpointPushFiles
from .metrics import perplexity
from .model_card import CardContent, build_model_card, format_number, model_rows
from .tasks import PretrainingTask

logger = logging.getLogger(__name__)

# Parts of a model's loss that the Trainer logs beside the total, when the model's output has them.
LOSS_PARTS = ("generator_loss", "discriminator_loss")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def load_checkpoint_weights(model, checkpoint_dir):
    """Load the weights of a checkpoint saved by the Trainer into `model` (ELECTRA: both of its models), every
    tensor restored."""
    if isinstance(model, ElectraPretrainingModel):
        model.load_saved_weights(checkpoint_dir)
    else:
        load_weights_strictly(model, Path(checkpoint_dir))


def distributed_defaults(training_args, config):
    """Set the DDP options that reformer-pytorch's reversible layers need, unless given on the command line.

    The Trainer turns `find_unused_parameters` on for a model without gradient checkpointing, and DDP then fails
    in the reversible backward pass ("Expected to mark a variable ready only once"); every parameter is used in
    every step, so it is off here. With `weight_tie` one module's parameters get a gradient once per layer, which
    DDP only accepts with `static_graph`.
    """
    if training_args.ddp_find_unused_parameters is None:
        training_args.ddp_find_unused_parameters = False
    if training_args.ddp_static_graph is None and config.weight_tie:
        training_args.ddp_static_graph = True
    if training_args.world_size > 1 and config.layer_dropout > 0:
        raise UserInputError(
            "layer_dropout > 0 skips different layers in each process, which DDP cannot synchronize; set layer_dropout=0."
        )
    return training_args


def refuse_unsharded_run(trainer):
    """Refuse `--fsdp` or `--deepspeed` where accelerate did not turn it on: it shards only across processes on GPUs
    (or other accelerators), so on CPUs (`--use_cpu`) the run would silently be plain data parallel."""
    for option, asked, enabled in (
        ("--fsdp", trainer.args.fsdp_plugin_args is not None, trainer.is_fsdp_enabled),
        ("--deepspeed", bool(trainer.args.deepspeed), trainer.is_deepspeed_enabled),
    ):
        if asked and not enabled:
            raise UserInputError(
                f"{option}: accelerate did not turn it on for this run (it shards only across processes on GPUs, "
                "never on CPUs), so nothing would be sharded. Launch it on GPUs (torchrun, accelerate launch), or drop "
                f"{option} to train with plain data parallelism."
            )


class ReformerKoTrainer(Trainer):
    """transformers' `Trainer` with reformer-ko's defaults, loss check, safe saving and model card (module docstring).

    `final_metrics` collects the metrics of the run for the model card; the training command fills it.
    """

    def __init__(self, model=None, args=None, **kwargs):
        if args is not None and model is not None:
            # Before the Trainer's own __init__, which builds the accelerator from these options.
            distributed_defaults(args, model.config)
        super().__init__(model, args, **kwargs)
        refuse_unsharded_run(self)
        self.add_callback(CheckpointCompletion())
        self.add_callback(CheckpointPushFiles())
        self.final_metrics = {}
        # The model's own forward keeps full-shape logits for everyone else; only this trainer asks for sparse ones.
        self.sparse_prediction = isinstance(model, ReformerKoForMaskedLM) and model.config.sparse_prediction

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.sparse_prediction and "labels" in inputs:
            inputs = {**inputs, "sparse_prediction": True}
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def train(self, resume_from_checkpoint=None, trial=None, ignore_keys_for_eval=None):
        """As transformers' `train`, except that a run resumed from a checkpoint that already reached `--max_steps`
        is not trained further (transformers would run one more step): its weights and state are restored as they
        are, so that saving and evaluating give what the uninterrupted run gave."""
        # Only for checkpoints of whole weights (model.safetensors): sharded ones (FSDP) need the Trainer's loading.
        whole = isinstance(resume_from_checkpoint, (str, os.PathLike)) and os.path.isfile(
            os.path.join(resume_from_checkpoint, SAFE_WEIGHTS_NAME)
        )
        if whole and self.args.max_steps > 0:
            state = TrainerState.load_from_json(os.path.join(resume_from_checkpoint, TRAINER_STATE_NAME))
            if state.global_step >= self.args.max_steps:
                logger.warning(f"{resume_from_checkpoint} is the end of training (step {state.global_step}): not training further.")
                load_checkpoint_weights(self.accelerator.unwrap_model(self.model), resume_from_checkpoint)
                self.state = state
                losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
                return TrainOutput(state.global_step, losses[-1] if losses else float("nan"), {"epoch": state.epoch})
        return super().train(resume_from_checkpoint, trial, ignore_keys_for_eval)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        finite = torch.isfinite(loss).all().to(dtype=torch.float32).reshape(1)
        if self.args.world_size > 1:
            finite = self.accelerator.gather(finite)
        if not bool(finite.min()):
            step = self.state.global_step + 1
            raise NonFiniteLossError(
                f"NaN or infinite training loss at step {step} (this process: {loss.item():.4g}): training stopped "
                f"before this step's update, so the weights are those after step {step - 1}. Lower the learning "
                "rate or raise the warm-up (--learning_rate, --warmup_steps), keep --max_grad_norm, prefer --bf16 "
                "to --fp16, then continue from the last checkpoint (run the same command again)."
            )
        return loss

    def save_model(self, output_dir=None, _internal_call=False):
        """Save the model, tokenizer and training arguments. A checkpoint's part (`_internal_call` with its
        directory) is written in place; the model of `output_dir` (also when `push_to_hub` saves it again) into
        `_incomplete/` first, then moved file by file into `output_dir`, `config.json` last."""
        if _internal_call and output_dir is not None:
            super().save_model(output_dir, _internal_call=True)
            if self.args.should_save and self.processing_class is not None:
                # The tokenizer files `reformer-ko train-tokenizer` writes, with the model's limit (training_model).
                save_tokenizer(self.processing_class, output_dir, overwrite=True)
            return
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        staged = os.path.join(output_dir, STAGING_DIR, "model")
        if self.args.should_save:
            shutil.rmtree(staged, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.save_model(staged, _internal_call=True)
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            fsync_tree(staged)
            move_contents(staged, output_dir)
            shutil.rmtree(os.path.join(output_dir, STAGING_DIR), ignore_errors=True)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def card_content(self, **kwargs) -> CardContent:
        """The task-specific parts of this run's model card; `kwargs` are those given to `create_model_card`."""
        raise NotImplementedError

    def create_model_card(self, model_name=None, language="ko", license="apache-2.0", tags=None, **kwargs):
        """Write README.md in the output directory: what the model is, how to use it, its data, training and
        results. Called by `push_to_hub` too; other keyword arguments go to `card_content`."""
        if not self.is_world_process_zero():
            return
        # Where users will load the model from: the repository pushed to, as the Hub named it (with the account
        # that --hub_model_id may leave out), else the output directory.
        location = self.hub_model_id or self.args.hub_model_id or self.args.output_dir
        card = build_model_card(
            self,
            self.card_content(location=location, **kwargs),
            model_name=model_name or Path(os.path.normpath(location)).name,
            metrics=self.final_metrics,
            language=language,
            license=license,
            tags=tags,
        )
        Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
        write_atomically(Path(self.args.output_dir) / "README.md", str(card))


class PretrainingTrainer(ReformerKoTrainer):
    """`ReformerKoTrainer` for a pretraining task: the task's metrics, ELECTRA's loss parts logged beside the
    total, and ELECTRA checkpoints that hold the discriminator and `generator/` (resuming loads both)."""

    def __init__(self, *args, task: PretrainingTask, training_data: TrainingData | None = None, **kwargs):
        kwargs.setdefault("compute_metrics", task.compute_metrics)
        kwargs.setdefault("preprocess_logits_for_metrics", task.preprocess_logits_for_metrics)
        super().__init__(*args, **kwargs)
        self.task = task
        self.training_data = training_data
        if isinstance(self.data_collator, BatchSeededCollator):
            self.add_callback(MaskingEpoch(self.data_collator))
        self._loss_part_sums, self._loss_part_count = {}, 0
        if isinstance(self.model, ElectraPretrainingModel) and self.args.load_best_model_at_end:
            raise UserInputError(
                "--load_best_model_at_end is not supported for ELECTRA; pick a checkpoint by its metrics instead."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        parts = {name: outputs.get(name) for name in LOSS_PARTS} if isinstance(outputs, dict) else {}
        parts = {name: part for name, part in parts.items() if part is not None}
        if model.training and parts:
            for name, part in parts.items():
                self._loss_part_sums[name] = self._loss_part_sums.get(name, 0) + part.detach().float()
            self._loss_part_count += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs, start_time=None):
        if "loss" in logs and self._loss_part_sums:
            for name, total in self._loss_part_sums.items():
                mean = self.accelerator.gather(total.reshape(1)).mean() / self._loss_part_count
                logs[name] = round(float(mean), 4)
            self._loss_part_sums, self._loss_part_count = {}, 0
        super().log(logs, start_time)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        # Evaluation masks the same way all run (BatchSeededCollator without an epoch), so evaluations compare.
        epoch = getattr(self.data_collator, "epoch", None)
        if epoch is not None:
            self.data_collator.epoch = None
        try:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        finally:
            if epoch is not None:
                self.data_collator.epoch = epoch
        prefix = metric_key_prefix
        if self.task.reports_perplexity and f"{prefix}_loss" in metrics:
            metrics[f"{prefix}_perplexity"] = perplexity(metrics[f"{prefix}_loss"])
        return metrics

    def save_model(self, output_dir=None, _internal_call=False):
        super().save_model(output_dir, _internal_call)
        # The generator is a standalone checkpoint too: it gets the tokenizer, where a model is written in place
        # (ReformerKoTrainer.save_model: a checkpoint, or the staged model of the output directory).
        generator_dir = os.path.join(output_dir or self.args.output_dir, GENERATOR_DIR)
        in_place = _internal_call and output_dir is not None
        if in_place and self.args.should_save and self.processing_class is not None and os.path.isdir(generator_dir):
            save_tokenizer(self.processing_class, generator_dir, overwrite=True)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # The one private method overridden (tests/test_training_contract.py checks its signature in transformers):
        # the Trainer loads `model.safetensors` into the model it trains, but an ELECTRA checkpoint holds the
        # discriminator there and the generator in `generator/`.
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if isinstance(target, ElectraPretrainingModel) and not self.is_fsdp_enabled:
            logger.info(f"Loading the discriminator and the generator from {resume_from_checkpoint}.")
            load_checkpoint_weights(target, resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def card_content(self, location, **kwargs) -> CardContent:
        task, data = self.task, self.training_data
        model = self.accelerator.unwrap_model(self.model)
        # For ELECTRA the checkpoint is the discriminator.
        saved_model = model.discriminator if isinstance(model, ElectraPretrainingModel) else model
        rows = model_rows(saved_model, saved_model.config)
        rows[0] = ("head", f"`{type(saved_model).__name__}` (`{task.auto_class}`)")
        if isinstance(model, ElectraPretrainingModel):
            generator = model.generator.config
            rows += [
                (
                    "generator (`generator/`)",
                    f"hidden size {generator.hidden_size} ({generator.num_attention_heads} × "
                    f"{generator.hidden_size // generator.num_attention_heads}), embeddings shared with the discriminator",
                ),
                ("discriminator loss weight", format_number(model.discriminator_loss_weight)),
            ]
        return CardContent(
            summary=(
                f"A Korean Reformer language model (reformer-ko, `{type(saved_model).__name__}`) pretrained by "
                f"{task.name}. The model code is saved beside the weights: load it with `trust_remote_code=True`, or "
                "install reformer-ko (`import reformer_ko` registers the models with the `Auto` classes)."
            ),
            usage=task.usage.format(model=location),
            pipeline_tag=task.pipeline_tag,
            data_lines=describe_training_data(task, data),
            model_rows=rows,
        )


def describe_training_data(task: PretrainingTask, data: TrainingData | None) -> list[str]:
    """The model card's training-data section of a pretraining run."""
    if data is None:
        return []
    lines = [
        "Training corpus: " + (", ".join(f"`{path}`" for path in data.train_files) or "none") + ".",
        f"Validation: {data.validation}.",
        f"Blocks of at most {data.block_length:,} tokens: {task.packing}.",
        "",
        "| split | documents | blocks |",
        "|---|---:|---:|",
    ]
    for split in data.documents:
        documents, blocks = data.documents.get(split), data.blocks.get(split)
        lines.append(
            f"| {split} | {'streamed' if documents is None else format_number(documents)} | "
            f"{'streamed' if blocks is None else format_number(blocks)} |"
        )
    return lines

