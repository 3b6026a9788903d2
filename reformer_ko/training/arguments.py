"""The arguments every training command shares, and their parsing (the command line, or one JSON file).

`ModelArguments` says which model to start from (a checkpoint, or a new one from a preset / config file),
`CorpusArguments` where pretraining text comes from, and `TrainingArguments` is transformers' with the one option
that transformers 5 dropped and a run that must not lose files needs: `--overwrite_output_dir`.
"""

import difflib
import json
import os
import sys
from dataclasses import dataclass, field

import transformers
from transformers import HfArgumentParser

from ..configuration_reformer_ko import PRESETS, ReformerKoConfig
from ..errors import ArgumentError


@dataclass
class ModelArguments:
    """Which model to train: a checkpoint to continue from, or a new one from a preset / config file."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "A reformer-ko checkpoint (directory or Hub id) to start from. Leave unset to train a new model."
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
                "--model_name_or_path starts from a trained model with its own config: drop --config_preset, "
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

    @property
    def hub_options(self) -> dict:
        """The keyword arguments of `from_pretrained` that say where and which revision to load."""
        return {"cache_dir": self.cache_dir, "revision": self.model_revision, "token": self.token}


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


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """transformers' `TrainingArguments`, and `--overwrite_output_dir`."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Train into an output directory that holds files this run did not write (another model, a README, "
            "an earlier run's checkpoints, which are deleted). Without it such a directory is refused."
        },
    )


def check_corpus_arguments(corpus_args: CorpusArguments, training_args) -> None:
    """Refuse, before any data is read, what the corpus arguments and the Trainer's cannot do together."""
    if training_args.do_eval and not corpus_args.validation_file and corpus_args.validation_split_percentage == 0:
        raise ArgumentError(
            "--do_eval needs validation data: give --validation_file, or a --validation_split_percentage above 0."
        )
    if corpus_args.streaming and training_args.do_train and training_args.max_steps <= 0:
        raise ArgumentError("--streaming needs --max_steps: a streamed corpus has no length to make epochs of.")


def parse_arguments(dataclass_types, args=None, prog=None):
    """Parse command-line arguments (or the list `args`) into the dataclasses; a single `.json` argument is read
    as a file of arguments, as in transformers' examples. Arguments that fail the dataclasses' checks raise
    `ArgumentError`. `prog` names the command in usage and errors (default: the script's name)."""
    parser = HfArgumentParser(dataclass_types, prog=prog)
    args = sys.argv[1:] if args is None else [str(argument) for argument in args]
    try:
        if len(args) == 1 and args[0].endswith(".json"):
            return parser.parse_json_file(json_file=os.path.abspath(args[0]))
        return parser.parse_args_into_dataclasses(args=args)
    except ValueError as error:  # raised by the dataclasses' checks (ours and TrainingArguments')
        raise ArgumentError(str(error)) from error


def parse_config_overrides(text: str | None) -> dict:
    """`"a=1,b=[2,3],c=true,d=axial"` → `{"a": 1, "b": [2, 3], "c": True, "d": "axial"}`. Values are JSON (Python's
    `True`/`False`/`None` too); a bare word is a string. Unknown fields, and values of the wrong kind for a field
    whose default is a bool or a number, are `ArgumentError`s."""
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
    defaults = ReformerKoConfig().to_dict()
    overrides = {}
    for item in filter(str.strip, items):
        key, separator, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not separator:
            raise ArgumentError(f"--config_overrides: {item!r} is not of the form field=value.")
        if key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else " (help(reformer_ko.ReformerKoConfig) lists them)."
            raise ArgumentError(f"--config_overrides: {key!r} is not a field of ReformerKoConfig{hint}")
        overrides[key] = _override_value(key, value, defaults[key])
    return overrides


_PYTHON_LITERALS = {"true": True, "false": False, "none": None, "null": None}


def _override_value(key, text, default):
    """The value of one override, checked against the kind of the field's default."""
    if text.lower() in _PYTHON_LITERALS:
        value = _PYTHON_LITERALS[text.lower()]
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
    if value is None:  # fields whose default is derived (num_buckets, embedding_size, ...) take None to derive it
        return value
    if isinstance(default, bool):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(default, int):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        expected, ok = "a number", isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        return value
    if not ok:
        raise ArgumentError(f"--config_overrides: {key} must be {expected}, got {text!r}.")
    return value
