"""Pretraining with the Hugging Face Trainer: what `examples/run_mlm.py`, `run_clm.py` and `run_electra.py` share.

- argument dataclasses (`ModelArguments`, `CorpusArguments`) and their parsing (a single JSON file also works);
- the tokenizer, a new model's config (from a preset, a config file and overrides) and the vocabulary check;
- the documents of the corpus with a validation split, and a masking collator whose masks depend only on the
  batch (so that a resumed run, a DataLoader worker or another process masks a batch exactly alike);
- `PretrainingTrainer`: the Trainer with DDP defaults that suit reformer-pytorch, a stop on a NaN/inf loss,
  checkpoints that only appear once complete, ELECTRA's two-model checkpoints, and our model card;
- the eval metrics of each task, and `train_and_evaluate`, the end of every script.
"""

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import torch
import transformers
from transformers import HfArgumentParser, Trainer
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, rotate_checkpoints

import reformer_ko

from .configuration_reformer_ko import PRESETS, ReformerKoConfig
from .data import load_corpus
from .electra import ElectraPretrainingModel
from .tokenization import load_tokenizer

logger = logging.getLogger(__name__)

# Checkpoints and the final model are written here first and moved into place once complete. The Trainer's
# upload to the Hub skips names starting with "_".
INCOMPLETE_DIR = "_incomplete"
# Parts of a model's loss that the Trainer logs beside the total, when the model's output has them.
LOSS_PARTS = ("generator_loss", "discriminator_loss")


# Arguments -------------------------------------------------------------------------------------------------------


@dataclass
class ModelArguments:
    """Which model to train: a checkpoint to continue from, or a new one from a preset / config file."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A reformer-ko checkpoint (directory or Hub id) to continue training. Leave unset to train from scratch."
        },
    )
    config_preset: str | None = field(
        default=None,
        metadata={"help": f"Size of a new model: one of {', '.join(PRESETS)}.", "choices": list(PRESETS)},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "A config.json (or a directory holding one) for a new model."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Fields of a new model's config to override, e.g. "
            "'hidden_size=256,num_hidden_layers=4,axial_position_shape=[64,80]' (values are JSON)."
        },
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "Tokenizer directory (from `reformer-ko train-tokenizer`) or Hub id; defaults to model_name_or_path."
        },
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where to cache downloaded models and the prepared corpus."}
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub model."})
    token: str | None = field(default=None, metadata={"help": "Hub token, for private models."})

    def __post_init__(self):
        if self.model_name_or_path and (self.config_preset or self.config_name or self.config_overrides):
            raise ValueError(
                "--model_name_or_path continues a trained model with its own config: drop --config_preset, "
                "--config_name and --config_overrides (they describe a new model)."
            )
        if not self.model_name_or_path and not (self.config_preset or self.config_name):
            raise ValueError("Give --model_name_or_path, or --config_preset / --config_name for a new model.")
        if self.config_preset and self.config_name:
            raise ValueError("Give one of --config_preset and --config_name, not both.")
        if not self.model_name_or_path and not self.tokenizer_name:
            raise ValueError(
                "A new model needs --tokenizer_name: train one with `reformer-ko train-tokenizer --corpus ... --output DIR`."
            )


@dataclass
class CorpusArguments:
    """Where the text comes from: corpus files (one sentence per line, a blank line between documents)."""

    train_file: list[str] | None = field(
        default=None, metadata={"help": "Training corpus: one or more files, directories of *.txt, or glob patterns."}
    )
    validation_file: list[str] | None = field(
        default=None,
        metadata={"help": "Validation corpus, in the same format; if unset, see validation_split_percentage."},
    )
    validation_split_percentage: float = field(
        default=5,
        metadata={"help": "Without --validation_file: the percentage of training documents held out (evenly spaced)."},
    )
    streaming: bool = field(
        default=False,
        metadata={"help": "Read the corpus on the fly instead of preparing it on disk first (needs --max_steps)."},
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes that read and pack the corpus."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training blocks."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation blocks."})
    encoding_errors: str = field(
        default="strict",
        metadata={
            "help": "On invalid UTF-8 in the corpus: stop (strict) or read it as U+FFFD (replace).",
            "choices": ["strict", "replace"],
        },
    )

    def __post_init__(self):
        if not self.train_file and not self.validation_file:
            raise ValueError("Give --train_file (and/or --validation_file).")
        if not 0 <= self.validation_split_percentage < 100:
            raise ValueError(
                f"--validation_split_percentage must be in [0, 100), got {self.validation_split_percentage}."
            )


def parse_arguments(dataclass_types, args=None):
    """Parse command-line arguments (or the list `args`) into the dataclasses; a single `.json` argument is read
    as a file of arguments, as in transformers' examples."""
    parser = HfArgumentParser(dataclass_types)
    args = sys.argv[1:] if args is None else list(args)
    if len(args) == 1 and args[0].endswith(".json"):
        return parser.parse_json_file(json_file=os.path.abspath(args[0]))
    return parser.parse_args_into_dataclasses(args=args)


def setup_logging(training_args):
    """transformers' example-script logging: INFO on the main process, warnings on the others."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    if training_args.should_log:
        transformers.utils.logging.set_verbosity_info()
    log_level = training_args.get_process_log_level()
    logging.getLogger("reformer_ko").setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.warning(
        f"Process rank {training_args.process_index} of {training_args.world_size}, device {training_args.device}, "
        f"bf16 {training_args.bf16}, fp16 {training_args.fp16}"
    )


# Tokenizer and model config --------------------------------------------------------------------------------------


def load_pretraining_tokenizer(model_args: ModelArguments):
    """The tokenizer of `--tokenizer_name`, else of `--model_name_or_path`; local directories are checked for
    the special tokens reformer-ko models need."""
    name = model_args.tokenizer_name or model_args.model_name_or_path
    if Path(name).is_dir():
        return load_tokenizer(name)
    return transformers.AutoTokenizer.from_pretrained(
        name, cache_dir=model_args.cache_dir, revision=model_args.model_revision, token=model_args.token
    )


def parse_config_overrides(text: str | None) -> dict:
    """`"a=1,b=[2,3],c=true,d=axial"` → `{"a": 1, "b": [2, 3], "c": True, "d": "axial"}`; unknown fields are an error."""
    if not text:
        return {}
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            items.append(text[start:index])
            start = index + 1
    items.append(text[start:])
    known = set(ReformerKoConfig().to_dict())
    overrides = {}
    for item in filter(str.strip, items):
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator:
            raise ValueError(f"config override {item!r} is not of the form field=value")
        if key not in known:
            raise ValueError(f"config override {key!r} is not a field of ReformerKoConfig")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value.strip()
    return overrides


def new_model_config(model_args: ModelArguments, tokenizer, **fixed) -> ReformerKoConfig:
    """The config of a new model: a preset or config file, then `--config_overrides`, then `fixed` fields that the
    task needs (e.g. `is_decoder=True`). A preset takes the tokenizer's vocabulary size unless overridden."""
    overrides = parse_config_overrides(model_args.config_overrides)
    if model_args.config_preset:
        fields = {"vocab_size": len(tokenizer), **overrides, **fixed}
        config = ReformerKoConfig.from_preset(model_args.config_preset, **fields)
    else:
        base = ReformerKoConfig.from_pretrained(model_args.config_name, cache_dir=model_args.cache_dir)
        config = ReformerKoConfig.from_dict({**base.to_dict(), **overrides, **fixed})
    check_vocab_size(config, tokenizer)
    logger.info(f"New model config: {config.to_json_string()}")
    return config


def pretraining_model(model_class, model_args: ModelArguments, tokenizer, *, new_config_fields=None, **model_kwargs):
    """The model to pretrain: `--model_name_or_path` continued, or a new `model_class` from
    `new_model_config(model_args, tokenizer, **new_config_fields)`; `model_kwargs` go to either. Its vocabulary
    must be the tokenizer's."""
    if model_args.model_name_or_path:
        model = model_class.from_pretrained(
            model_args.model_name_or_path,
            cache_dir=model_args.cache_dir,
            revision=model_args.model_revision,
            token=model_args.token,
            **model_kwargs,
        )
    else:
        model = model_class(new_model_config(model_args, tokenizer, **(new_config_fields or {})), **model_kwargs)
    check_vocab_size(model.config, tokenizer)
    return model


def check_vocab_size(config, tokenizer):
    """Raise if the model's vocabulary is not the tokenizer's: ids would be out of range, or rows never trained."""
    if config.vocab_size != len(tokenizer):
        raise ValueError(
            f"The model's vocab_size ({config.vocab_size}) does not match the tokenizer ({len(tokenizer)} tokens). "
            f"Use the tokenizer the model was trained with, or for a new model set vocab_size={len(tokenizer)} "
            "(--config_overrides vocab_size=...)."
        )


def block_length(requested, config, tokenizer):
    """`requested` (--max_seq_length / --block_size), or the longest the model and the tokenizer both allow."""
    if requested is not None:
        return requested
    return min(config.max_position_embeddings, tokenizer.model_max_length)


# Data ------------------------------------------------------------------------------------------------------------


def is_validation_document(index, percentage):
    """Whether the `index`-th document is held out: `percentage` % of the documents, evenly spaced."""
    return math.floor((index + 1) * percentage / 100) > math.floor(index * percentage / 100)


def load_documents(corpus_args: CorpusArguments, *, seed, cache_dir=None) -> dict:
    """The `train` and `validation` documents (datasets of `{"sentences": [...]}`): the validation files, or the
    evenly spaced `validation_split_percentage` % of the training documents. Streamed training documents are
    shuffled through a buffer, reshuffled each epoch."""
    options = {
        "streaming": corpus_args.streaming,
        "num_proc": corpus_args.preprocessing_num_workers,
        "cache_dir": cache_dir,
        "encoding_errors": corpus_args.encoding_errors,
    }
    documents = {}
    if corpus_args.train_file:
        documents["train"] = load_corpus(corpus_args.train_file, **options)
    if corpus_args.validation_file:
        documents["validation"] = load_corpus(corpus_args.validation_file, **options)
    elif corpus_args.validation_split_percentage > 0:
        percentage = corpus_args.validation_split_percentage
        corpus = documents["train"]
        documents["validation"] = corpus.filter(lambda _, i: is_validation_document(i, percentage), with_indices=True)
        documents["train"] = corpus.filter(lambda _, i: not is_validation_document(i, percentage), with_indices=True)
        if not corpus_args.streaming and len(documents["validation"]) == 0:
            raise ValueError(
                f"{percentage}% of {len(corpus)} documents is no document: raise --validation_split_percentage or "
                "give --validation_file."
            )
    if corpus_args.streaming and "train" in documents:
        documents["train"] = documents["train"].shuffle(seed=seed, buffer_size=10_000)
    return documents


def select_samples(blocks: dict, corpus_args: CorpusArguments) -> dict:
    """Keep the first `max_train_samples` / `max_eval_samples` blocks; a split left without blocks is an error."""
    limits = {"train": corpus_args.max_train_samples, "validation": corpus_args.max_eval_samples}
    selected = {}
    for split, dataset in blocks.items():
        limit = limits.get(split)
        if limit is None:
            selected[split] = dataset
        elif isinstance(dataset, datasets.IterableDataset):
            selected[split] = dataset.take(limit)
        else:
            selected[split] = dataset.select(range(min(limit, len(dataset))))
        if not isinstance(dataset, datasets.IterableDataset) and len(selected[split]) == 0:
            raise ValueError(
                f"The {split} data gives no block: give more text, or shorter blocks (--block_size / --max_seq_length)."
            )
    return selected


class BatchSeededCollator:
    """Run a masking collator (one drawing from torch's global CPU generator, e.g. `mlm_collator(..., seed=None)`)
    with that generator seeded from `seed` and the batch's token ids, and restored afterwards.

    A batch is then masked the same way whatever ran before it: in a run resumed from a checkpoint (the Trainer's
    data loader collates one batch ahead, so the checkpointed random state cannot replay it), in a DataLoader
    worker, and in every evaluation. Training and LSH rotations keep drawing from the global generator, which the
    Trainer checkpoints.
    """

    def __init__(self, collator, seed):
        self.collator = collator
        self.seed = seed

    def batch_seed(self, examples):
        digest = hashlib.blake2b(str(self.seed).encode(), digest_size=8)
        for example in examples:
            digest.update(np.asarray(example["input_ids"], dtype=np.int64).tobytes())
        return int.from_bytes(digest.digest(), "little") >> 1

    def __call__(self, examples):
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.batch_seed(examples))
            return self.collator(examples)


# Tasks and their metrics -----------------------------------------------------------------------------------------


def predicted_ids(logits, labels):
    """The argmax ids in the labels' shape. A masked LM with `sparse_prediction` returns logits only at the labelled
    positions: their ids go back to those positions (-100 elsewhere), so that every process's predictions keep one
    row per sequence (the Trainer drops repeated sequences of the last batch row by row)."""
    ids = logits.argmax(dim=-1)
    if labels is None or ids.dim() == labels.dim():
        return ids
    labelled = labels != -100
    if ids.numel() != (count := int(labelled.sum())):
        raise ValueError(
            f"Got predictions for {ids.numel()} positions but {count} labelled positions: sparse "
            "logits must hold exactly the positions where labels != -100, in order."
        )
    return torch.full_like(labels, -100).masked_scatter(labelled, ids)


def argmax_logits(logits, labels):
    """Keep only the predicted ids (the Trainer would otherwise gather every logit of the eval set)."""
    return predicted_ids(logits[0] if isinstance(logits, tuple) else logits, labels)


def masked_lm_metrics(eval_prediction):
    """Accuracy of the predicted tokens at the masked positions."""
    predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
    masked = labels != -100
    return {"masked_token_accuracy": float((predictions[masked] == labels[masked]).mean())}


def causal_lm_metrics(eval_prediction):
    """Accuracy of the next-token predictions (each position predicts the label one step later)."""
    predictions, labels = eval_prediction.predictions[:, :-1], eval_prediction.label_ids[:, 1:]
    scored = labels != -100
    return {"next_token_accuracy": float((predictions[scored] == labels[scored]).mean())}


def electra_eval_outputs(outputs, labels):
    """From `ElectraPretrainingOutput` (as a tuple without the loss): the generator's predicted ids, the
    discriminator's logits and labels, and both losses repeated per sequence (so they average over sequences)."""
    generator_loss, discriminator_loss, generator_logits, discriminator_logits, discriminator_labels = outputs
    batch_size = discriminator_logits.shape[0]
    return (
        predicted_ids(generator_logits, labels),
        discriminator_logits,
        discriminator_labels,
        generator_loss.expand(batch_size),
        discriminator_loss.expand(batch_size),
    )


def electra_metrics(eval_prediction):
    """Generator accuracy at masked positions; discriminator accuracy over all tokens, and its precision, recall
    and F1 at detecting replaced tokens."""
    generator_ids, discriminator_logits, discriminator_labels, generator_loss, discriminator_loss = (
        eval_prediction.predictions
    )
    mlm_labels = eval_prediction.label_ids
    masked = mlm_labels != -100
    scored = discriminator_labels != -100
    replaced = discriminator_labels[scored] == 1
    predicted = discriminator_logits[scored] > 0
    true_positives = float((predicted & replaced).sum())
    precision = true_positives / max(float(predicted.sum()), 1.0)
    recall = true_positives / max(float(replaced.sum()), 1.0)
    return {
        "generator_loss": float(generator_loss.mean()),
        "discriminator_loss": float(discriminator_loss.mean()),
        "generator_accuracy": float((generator_ids[masked] == mlm_labels[masked]).mean()),
        "discriminator_accuracy": float((predicted == replaced).mean()),
        "replaced_token_precision": precision,
        "replaced_token_recall": recall,
        "replaced_token_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "replaced_token_fraction": float(replaced.mean()),
    }


@dataclass(frozen=True)
class PretrainingTask:
    """What differs between the three pretraining scripts once the model and the data are built."""

    name: str
    auto_class: str
    pipeline_tag: str | None
    packing: str
    preprocess_logits_for_metrics: Callable
    compute_metrics: Callable
    reports_perplexity: bool
    usage: str


MASKED_LM = PretrainingTask(
    name="masked language modeling",
    auto_class="AutoModelForMaskedLM",
    pipeline_tag="fill-mask",
    packing="each document's sentences packed greedily into `[CLS] … [SEP]` blocks",
    preprocess_logits_for_metrics=argmax_logits,
    compute_metrics=masked_lm_metrics,
    reports_perplexity=True,
    usage="""from transformers import pipeline

fill_mask = pipeline("fill-mask", model="{model}", trust_remote_code=True)
fill_mask("김치는 한국의 대표적인 [MASK]이다.")""",
)
CAUSAL_LM = PretrainingTask(
    name="causal language modeling",
    auto_class="AutoModelForCausalLM",
    pipeline_tag="text-generation",
    packing="documents joined by `[SEP]` (end of document) and cut into fixed-length blocks",
    preprocess_logits_for_metrics=argmax_logits,
    compute_metrics=causal_lm_metrics,
    reports_perplexity=True,
    usage="""from transformers import pipeline

generate = pipeline("text-generation", model="{model}", trust_remote_code=True)
generate("김치는", max_new_tokens=40, do_sample=True, top_p=0.95)""",
)
ELECTRA = PretrainingTask(
    name="ELECTRA replaced-token detection",
    auto_class="AutoModelForPreTraining",
    pipeline_tag=None,
    packing="each document's sentences packed greedily into `[CLS] … [SEP]` blocks",
    preprocess_logits_for_metrics=electra_eval_outputs,
    compute_metrics=electra_metrics,
    reports_perplexity=False,
    usage="""from transformers import AutoModelForQuestionAnswering, AutoTokenizer

# The discriminator is the model to fine-tune; only the task head is new.
tokenizer = AutoTokenizer.from_pretrained("{model}")
model = AutoModelForQuestionAnswering.from_pretrained("{model}", trust_remote_code=True)
# The generator (a masked LM) is in the generator/ folder:
# AutoModelForMaskedLM.from_pretrained("{model}", subfolder="generator", trust_remote_code=True)""",
)


# The Trainer -----------------------------------------------------------------------------------------------------


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
        raise ValueError(
            "layer_dropout > 0 skips different layers in each process, which DDP cannot synchronize; set layer_dropout=0."
        )
    return training_args


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainingData:
    """What a model was trained on, for its model card."""

    train_files: list[str]
    validation: str
    block_length: int
    documents: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)


def describe_data(corpus_args: CorpusArguments, documents: dict, blocks: dict, length: int) -> TrainingData:
    """The `TrainingData` of a run: files, validation source, and the numbers of documents and blocks (unknown
    when streaming)."""
    if corpus_args.validation_file:
        validation = "validation files: " + ", ".join(f"`{path}`" for path in corpus_args.validation_file)
    else:
        validation = f"{corpus_args.validation_split_percentage:g}% of the training documents, evenly spaced"

    def count(dataset):
        return None if isinstance(dataset, datasets.IterableDataset) else len(dataset)

    return TrainingData(
        train_files=list(corpus_args.train_file or []),
        validation=validation,
        block_length=length,
        documents={split: count(dataset) for split, dataset in documents.items()},
        blocks={split: count(dataset) for split, dataset in blocks.items()},
    )


class PretrainingTrainer(Trainer):
    """transformers' `Trainer` for reformer-ko pretraining. In addition:

    - training stops at the first step whose loss is NaN or infinite (on any process), before that step's update,
      with `NonFiniteLossError`;
    - a checkpoint (and the final model) is written under `_incomplete/` and moved into place once complete, so a
      run killed while saving never leaves a `checkpoint-N` that looks complete;
    - ELECTRA: checkpoints hold the discriminator and `generator/`, and resuming loads both;
    - the model card (README.md) describes the data, the config and the final metrics.
    """

    def __init__(self, *args, task: PretrainingTask, training_data: TrainingData | None = None, **kwargs):
        kwargs.setdefault("compute_metrics", task.compute_metrics)
        kwargs.setdefault("preprocess_logits_for_metrics", task.preprocess_logits_for_metrics)
        super().__init__(*args, **kwargs)
        self.task = task
        self.training_data = training_data
        self.final_metrics = {}
        self._loss_part_sums, self._loss_part_count = {}, 0
        self._checkpoint_staging_root = None
        self._push_after_publish = False
        if isinstance(self.model, ElectraPretrainingModel) and self.args.load_best_model_at_end:
            raise ValueError(
                "--load_best_model_at_end is not supported for ELECTRA; pick a checkpoint by its metrics instead."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        # ELECTRA's loss has two parts worth watching apart: log each one's mean beside the total.
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
                "to --fp16, then continue from the last checkpoint with --resume_from_checkpoint."
            )
        return loss

    # Atomic checkpoints: the Trainer writes the checkpoint under `_incomplete/`, then it is renamed into place.

    def _get_output_dir(self, trial):
        if self._checkpoint_staging_root is not None:
            return self._checkpoint_staging_root
        return super()._get_output_dir(trial)

    def _push_from_checkpoint(self, checkpoint_folder):
        if self._checkpoint_staging_root is not None:
            # Uploads run in the background: push the checkpoint from its final place, once it is there.
            self._push_after_publish = True
            return
        super()._push_from_checkpoint(checkpoint_folder)

    def _save_checkpoint(self, model, trial):
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging_root = os.path.join(run_dir, INCOMPLETE_DIR)
        staged, final = os.path.join(staging_root, name), os.path.join(run_dir, name)
        if self.args.should_save:
            shutil.rmtree(staged, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._checkpoint_staging_root = staging_root
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._checkpoint_staging_root = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if self.state.best_model_checkpoint == staged:
                self.state.best_model_checkpoint = final
                self.state.save_to_json(os.path.join(staged, TRAINER_STATE_NAME))
            publish_directory(staged, final)
            with contextlib.suppress(OSError):
                os.rmdir(staging_root)
            logger.info(f"Checkpoint complete: {final}")
            rotate_checkpoints(
                output_dir=run_dir,
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
        self.accelerator.wait_for_everyone()
        if self._push_after_publish:
            self._push_after_publish = False
            super()._push_from_checkpoint(final)

    def save_model(self, output_dir=None, _internal_call=False):
        """Save the model, tokenizer and training arguments; unless called from inside the Trainer (checkpoints,
        which are staged as a whole), into `_incomplete/` first and then moved file by file into `output_dir`."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if _internal_call:
            super().save_model(output_dir, _internal_call=True)
            self._save_generator_tokenizer(output_dir)
            return
        staged = os.path.join(output_dir, INCOMPLETE_DIR, "model")
        if self.args.should_save:
            shutil.rmtree(staged, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        super().save_model(staged, _internal_call=True)
        self._save_generator_tokenizer(staged)
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            fsync_tree(staged)
            move_contents(staged, output_dir)
            shutil.rmtree(os.path.join(output_dir, INCOMPLETE_DIR), ignore_errors=True)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _save_generator_tokenizer(self, output_dir):
        generator_dir = os.path.join(output_dir, "generator")
        if self.args.should_save and self.processing_class is not None and os.path.isdir(generator_dir):
            self.processing_class.save_pretrained(generator_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if isinstance(target, ElectraPretrainingModel) and not self.is_fsdp_enabled:
            logger.info(f"Loading the discriminator and the generator from {resume_from_checkpoint}.")
            target.load_saved_weights(resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)

    def create_model_card(self, model_name=None, language="ko", license="apache-2.0", tags=None, **kwargs):
        """Write README.md in the output directory: the data, the config and the final metrics of this run."""
        if not self.is_world_process_zero():
            return
        card = model_card(
            self,
            model_name=model_name or self.args.hub_model_id or Path(self.args.output_dir).name,
            language=language,
            license=license,
            tags=tags,
        )
        path = Path(self.args.output_dir) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(card, encoding="utf-8")
        os.replace(temporary, path)


def fsync_tree(directory):
    """Flush every file under `directory` to disk (so that a rename never publishes data still in flight)."""
    for root, _, files in os.walk(directory):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def fsync_directory(directory):
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_directory(staged, final):
    """Move the complete directory `staged` to `final` in one rename (replacing an older `final`)."""
    fsync_tree(staged)
    if os.path.isdir(final):
        shutil.rmtree(final)
    os.replace(staged, final)
    fsync_directory(os.path.dirname(final) or ".")


def move_contents(source, destination):
    """Move every file under `source` to the same place under `destination`, each in one rename."""
    os.makedirs(destination, exist_ok=True)
    for name in os.listdir(source):
        origin, target = os.path.join(source, name), os.path.join(destination, name)
        if os.path.isdir(origin):
            if os.path.exists(target) and not os.path.isdir(target):
                os.remove(target)
            move_contents(origin, target)
        else:
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(origin, target)
    fsync_directory(destination)


# Model card ------------------------------------------------------------------------------------------------------


def format_number(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def model_card(trainer: PretrainingTrainer, *, model_name, language, license, tags=None) -> str:
    """The text of the model card of a pretraining run."""
    task, args, data = trainer.task, trainer.args, trainer.training_data
    model = trainer.accelerator.unwrap_model(trainer.model)
    # For ELECTRA the checkpoint is the discriminator.
    saved_model = model.discriminator if isinstance(model, ElectraPretrainingModel) else model
    config, head = saved_model.config, type(saved_model).__name__
    tags = ["reformer", "reformer-ko", "korean", *(tags or [])]
    front_matter = {
        "language": language,
        "license": license,
        "library_name": "transformers",
        "tags": list(dict.fromkeys(tags)),
    }
    if task.pipeline_tag:
        front_matter["pipeline_tag"] = task.pipeline_tag
    lines = [
        "---",
        *(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in front_matter.items()),
        "---",
        "",
    ]
    lines += [
        f"# {model_name}",
        "",
        (f"A Korean Reformer language model (reformer-ko, `{head}`) pretrained by {task.name}. "
        "The model code is saved beside the weights: load it with `trust_remote_code=True`, or install reformer-ko "
        "(`import reformer_ko` registers the models with the `Auto` classes)."),
        "",
        "## Usage",
        "",
        "```python",
        task.usage.format(model=args.hub_model_id or model_name),
        "```",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| head | `{head}` (`{task.auto_class}`) |",
        f"| parameters | {format_number(saved_model.num_parameters())} |",
        f"| hidden size / layers / heads | {config.hidden_size} / {config.num_hidden_layers} / {config.num_attention_heads} |",
        f"| embedding size | {config.embedding_size} |",
        f"| positions | {config.position_embedding_type}, up to {config.max_position_embeddings:,} tokens |",
        f"| LSH attention | buckets of {config.bucket_size} tokens, {config.num_hashes} hashes |",
        f"| vocabulary | {config.vocab_size:,} WordPiece tokens |",
    ]
    if isinstance(model, ElectraPretrainingModel):
        generator = model.generator.config
        lines += [
            (f"| generator (`generator/`) | hidden size {generator.hidden_size} ({generator.num_attention_heads} × "
            f"{generator.hidden_size // generator.num_attention_heads}), embeddings shared with the discriminator |"),
            f"| discriminator loss weight | {format_number(model.discriminator_loss_weight)} |",
        ]
    lines += ["", "The full configuration is in `config.json`.", ""]
    if data is not None:
        lines += [
            "## Training data",
            "",
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
        lines.append("")
    lines += [
        "## Training",
        "",
        "| | |",
        "|---|---|",
        (f"| learning rate | {args.learning_rate:g} ({getattr(args.lr_scheduler_type, 'value', args.lr_scheduler_type)} "
        f"schedule, {args.warmup_steps:g} warm-up steps) |"),
        (f"| batch size | {args.per_device_train_batch_size} per device × {args.world_size} processes × "
        f"{args.gradient_accumulation_steps} accumulation = {args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps} |"),
        f"| steps | {trainer.state.global_step:,} ({trainer.state.epoch or 0:.2f} epochs) |",
        f"| precision | {'bf16' if args.bf16 else 'fp16' if args.fp16 else 'fp32'} |",
        f"| seed | {args.seed} |",
        "",
    ]
    if trainer.final_metrics:
        lines += ["## Results", "", "| metric | value |", "|---|---:|"]
        for name, value in trainer.final_metrics.items():
            if name.endswith(("_runtime", "_per_second", "total_flos")):
                continue
            lines.append(f"| {name} | {format_number(value)} |")
        lines.append("")
    versions = {
        "reformer-ko": reformer_ko.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "datasets": datasets.__version__,
    }
    lines += ["## Framework versions", "", *(f"- {name} {version}" for name, version in versions.items()), ""]
    return "\n".join(lines)


# The end of every script -----------------------------------------------------------------------------------------


def resume_checkpoint(training_args):
    """The checkpoint to resume from: `--resume_from_checkpoint PATH`, or `last` (or `true`) for the newest one in
    the output directory."""
    value = training_args.resume_from_checkpoint
    output_dir = training_args.output_dir
    if value is None:
        if os.path.isdir(output_dir) and get_last_checkpoint(output_dir) is not None:
            logger.warning(
                f"{output_dir} holds checkpoints; training starts from scratch. To continue the run instead, pass "
                "--resume_from_checkpoint last."
            )
        return None
    if value.lower() in ("last", "true"):
        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: {output_dir} holds no checkpoint-N directory.")
        return last
    if not os.path.isdir(value):
        raise FileNotFoundError(f"--resume_from_checkpoint: {value} is not a directory.")
    return value


def perplexity(loss):
    return math.exp(loss) if loss < 700 else float("inf")


def end_training(trainer: Trainer):
    """Finish the trackers and destroy the process group (what newer transformers' `Trainer.end()` does), after
    releasing the DDP-wrapped model. A DDP reducer that outlives the process group destroys the group when it goes,
    holding the GIL while gloo's worker threads may need it: 2-process CPU runs hung at exit about 1 in 10."""
    trainer.model_wrapped = trainer.model
    trainer.accelerator.free_memory()
    trainer.accelerator.end_training()


def train_and_evaluate(trainer: PretrainingTrainer):
    """Train (resuming if asked), save the model, evaluate, write the model card or push to the Hub, and release
    the processes (`end_training`), even when something fails on the way."""
    args = trainer.args
    try:
        if args.do_train:
            result = trainer.train(resume_from_checkpoint=resume_checkpoint(args))
            trainer.save_model()
            trainer.log_metrics("train", result.metrics)
            trainer.save_metrics("train", result.metrics)
            trainer.save_state()
            trainer.final_metrics.update(result.metrics)
        if args.do_eval:
            metrics = trainer.evaluate()
            if trainer.task.reports_perplexity and "eval_loss" in metrics:
                metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
            trainer.log_metrics("eval", metrics)
            trainer.save_metrics("eval", metrics)
            trainer.final_metrics.update(metrics)
        if args.push_to_hub:
            trainer.push_to_hub()
        elif args.do_train:
            trainer.create_model_card()
    finally:
        end_training(trainer)


__all__ = [
    "CAUSAL_LM",
    "ELECTRA",
    "MASKED_LM",
    "BatchSeededCollator",
    "CorpusArguments",
    "ModelArguments",
    "NonFiniteLossError",
    "PretrainingTask",
    "PretrainingTrainer",
    "TrainingData",
    "block_length",
    "check_vocab_size",
    "describe_data",
    "distributed_defaults",
    "end_training",
    "load_documents",
    "load_pretraining_tokenizer",
    "new_model_config",
    "parse_arguments",
    "parse_config_overrides",
    "pretraining_model",
    "resume_checkpoint",
    "select_samples",
    "setup_logging",
    "train_and_evaluate",
]
