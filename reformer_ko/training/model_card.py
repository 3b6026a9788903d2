"""The model card (README.md) of a trained reformer-ko model: one builder for every task.

The Hub metadata is `huggingface_hub.ModelCardData`; the body has the same sections for every run (what the model
is, usage, the model, the training data, training, results, framework versions), whose task-specific parts come
from the trainer as a `CardContent`.
"""

import os
from dataclasses import dataclass, field

import datasets
import huggingface_hub
import torch
import transformers
from huggingface_hub import ModelCard, ModelCardData

from ..version import __version__

# Metrics that describe the machine rather than the model.
_MACHINE_METRICS = ("_runtime", "_per_second", "total_flos", "_model_preparation_time")


@dataclass
class CardContent:
    """The task-specific parts of a model card."""

    summary: str
    usage: str
    pipeline_tag: str | None = None
    tags: list[str] = field(default_factory=list)
    base_model: str | None = None
    data_lines: list[str] = field(default_factory=list)
    results_lines: list[str] = field(default_factory=list)
    model_rows: list[tuple[str, str]] = field(default_factory=list)
    hyperparameters: dict = field(default_factory=dict)


def format_number(value):
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def is_hub_model_id(name: str | None) -> bool:
    """Whether `name` names a Hub repository rather than a local path."""
    if not name or os.path.exists(name):
        return False
    try:
        huggingface_hub.utils.validate_repo_id(name)
    except huggingface_hub.errors.HFValidationError:
        return False
    return True


def model_rows(model, config) -> list[tuple[str, str]]:
    """The rows of the card's model table."""
    return [
        ("head", f"`{type(model).__name__}`"),
        ("parameters", format_number(model.num_parameters())),
        ("hidden size / layers / heads", f"{config.hidden_size} / {config.num_hidden_layers} / {config.num_attention_heads}"),
        ("embedding size", str(config.embedding_size)),
        ("positions", f"{config.position_embedding_type}, up to {config.max_position_embeddings:,} tokens"),
        ("LSH attention", f"buckets of {config.bucket_size} tokens, {config.num_hashes} hashes"),
        ("vocabulary", f"{config.vocab_size:,} WordPiece tokens"),
    ]


def training_rows(trainer) -> list[tuple[str, str]]:
    """The rows of the card's training table, from the trainer's arguments and state."""
    args = trainer.args
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    optimizer = getattr(args.optim, "value", args.optim)
    if "adam" in optimizer:
        optimizer += f" (betas=({args.adam_beta1}, {args.adam_beta2}), epsilon={args.adam_epsilon})"
    total_batch = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
    return [
        ("learning rate", f"{args.learning_rate:g} ({schedule} schedule, {args.warmup_steps:g} warm-up steps)"),
        ("optimizer", f"{optimizer}, weight decay {args.weight_decay:g}"),
        (
            "batch size",
            f"{args.per_device_train_batch_size} per device × {args.world_size} processes × "
            f"{args.gradient_accumulation_steps} accumulation = {total_batch}",
        ),
        ("steps", f"{trainer.state.global_step:,} ({trainer.state.epoch or 0:.2f} epochs)"),
        ("precision", "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"),
        ("seed", str(args.seed)),
    ]


def table(rows, header=("", "")) -> list[str]:
    return [f"| {header[0]} | {header[1]} |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def build_model_card(
    trainer, content: CardContent, *, model_name: str, metrics: dict, language="ko", license="apache-2.0", tags=None
) -> ModelCard:
    """The model card of `trainer`'s run: `content` for the task, `metrics` the final ones of the run."""
    metadata = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag=content.pipeline_tag,
        tags=list(dict.fromkeys(["reformer", "reformer-ko", "korean", *content.tags, *(tags or [])])),
        base_model=content.base_model if is_hub_model_id(content.base_model) else None,
    )
    lines = [f"# {model_name}", "", content.summary, ""]
    lines += ["## Usage", "", "```python", content.usage, "```", ""]
    lines += ["## Model", "", *table(content.model_rows), "", "The full configuration is in `config.json`.", ""]
    if content.data_lines:
        lines += ["## Training data", "", *content.data_lines, ""]
    hyperparameters = [(name, format_number(value)) for name, value in content.hyperparameters.items()]
    lines += ["## Training", "", *table(training_rows(trainer) + hyperparameters), ""]
    shown = {name: value for name, value in metrics.items() if not name.endswith(_MACHINE_METRICS)}
    if content.results_lines or shown:
        lines += ["## Results", ""]
        lines += [*content.results_lines, ""] if content.results_lines else []
        if shown:
            rows = [(name, format_number(value)) for name, value in shown.items()]
            lines += [*table(rows, header=("metric", "value")), ""]
    versions = {
        "reformer-ko": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "datasets": datasets.__version__,
    }
    lines += ["## Framework versions", "", *(f"- {name} {version}" for name, version in versions.items()), ""]
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n" + "\n".join(lines))
