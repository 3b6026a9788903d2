"""The tokenizer and the model a training command starts from, checked to belong together.

A model is either loaded (`--model_name_or_path`, any reformer-ko checkpoint: its head may differ, only the new head
is initialised) or new (`--config_preset` / `--config_name`, then `--config_overrides`, then the fields the task
fixes). Either way the tokenizer must be the one the model's vocabulary was trained with (`check_tokenizer_matches`),
the model records that vocabulary (`vocab_fingerprint`), and the tokenizer saved beside it promises no more
positions than the model has.
"""

import contextlib
import logging
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from ..configuration_reformer_ko import ReformerKoConfig
from ..errors import UserInputError
from ..tokenization import check_tokenizer_matches, forget_loading_options, load_tokenizer, vocabulary_fingerprint
from .arguments import ModelArguments, parse_config_overrides

logger = logging.getLogger(__name__)


def load_training_tokenizer(model_args: ModelArguments):
    """The tokenizer of `--tokenizer_name`, else of `--model_name_or_path`; local directories are checked for the
    special tokens reformer-ko models need."""
    name = model_args.tokenizer_name or model_args.model_name_or_path
    if Path(name).is_dir():
        return load_tokenizer(name)
    with found_locally_or_on_the_hub("--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path", name):
        return forget_loading_options(AutoTokenizer.from_pretrained(name, **model_args.hub_options))


@contextlib.contextmanager
def found_locally_or_on_the_hub(option: str, name: str):
    """An `OSError` of loading `name` (neither a local directory nor a Hub repository that could be reached) as a
    one-line `UserInputError` naming the option."""
    try:
        yield
    except OSError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(
            f"{option} {name}: not a local directory, and loading it from the Hub failed ({reason}). Check the path."
        ) from error


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
    config.vocab_fingerprint = None  # a new model has no vocabulary yet: it takes the tokenizer's
    return config


def checkpoint_config(model_args: ModelArguments) -> ReformerKoConfig:
    """The config of `--model_name_or_path`, which must be a reformer-ko checkpoint."""
    with found_locally_or_on_the_hub("--model_name_or_path", model_args.model_name_or_path):
        config = AutoConfig.from_pretrained(model_args.model_name_or_path, **model_args.hub_options)
    if config.model_type != ReformerKoConfig.model_type:
        raise UserInputError(
            f"{model_args.model_name_or_path} is a {config.model_type!r} checkpoint; reformer-ko trains reformer-ko "
            "models: pass a checkpoint saved by reformer-ko, or --config_preset to start a new one."
        )
    return config


def training_model(model_class, model_args: ModelArguments, tokenizer, *, new_config_fields=None, **model_kwargs):
    """The model to train: `--model_name_or_path` loaded as `model_class` (a checkpoint of any head), or a new
    `model_class` from `new_model_config(model_args, tokenizer, **new_config_fields)`; `model_kwargs` go to either.

    The tokenizer is checked against the model's vocabulary, the model's config records it, and the tokenizer's
    `model_max_length` is cut to the model's positions (it is saved beside the model)."""
    if model_args.model_name_or_path:
        config = checkpoint_config(model_args)
        check_tokenizer_matches(config, tokenizer)
        model = model_class.from_pretrained(model_args.model_name_or_path, **model_args.hub_options, **model_kwargs)
    else:
        config = new_model_config(model_args, tokenizer, **(new_config_fields or {}))
        check_tokenizer_matches(config, tokenizer)
        logger.info(f"New model config: {config.to_json_string()}")
        model = model_class(config, **model_kwargs)
    record_vocabulary(model, tokenizer)
    tokenizer.model_max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)
    return model


def record_vocabulary(model, tokenizer):
    """Store the tokenizer's vocabulary fingerprint in the config of `model` and of any reformer-ko model inside it
    (ELECTRA's generator), so that a later run can tell whether a tokenizer belongs to it."""
    fingerprint = vocabulary_fingerprint(tokenizer)
    for module in model.modules():
        config = getattr(module, "config", None)
        if isinstance(config, ReformerKoConfig):
            config.vocab_fingerprint = fingerprint


def block_length(requested, config, tokenizer):
    """`requested` (--max_seq_length / --block_size), or the longest the model and the tokenizer both allow."""
    if requested is not None:
        return requested
    return min(config.max_position_embeddings, tokenizer.model_max_length)
