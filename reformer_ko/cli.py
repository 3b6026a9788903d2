"""The `reformer-ko` command line: one sub-command per capability, each defined beside its code, and the error
policy of every entry point.

Sub-commands with their own options (`train-tokenizer`, `evaluate-korquad`, `demo`, ...) are argparse parsers.
The training commands (`pretrain mlm|clm|electra`, `korquad`) take transformers' example-script arguments, which
they parse themselves (`HfArgumentParser`), so everything after their name goes to them unchanged.

Errors: a wrong input (`UserInputError`, a file that cannot be read) is one line on standard error and exit status
1, or 2 for arguments (`ArgumentError`, argparse's usage errors); anything else is a bug and keeps its traceback.
`REFORMER_KO_DEBUG=1` shows the traceback of input errors too.
"""

import argparse
import importlib
import os
import sys

from .errors import ArgumentError, UserInputError

# sub-command name -> ("module:function", help); the function takes the sub-parser and returns the handler
# `handler(args) -> int` that runs the command.
COMMANDS = {
    "demo": ("reformer_ko.demo:add_demo_arguments", "the whole road on the shipped data, in minutes on a CPU"),
    "prepare-corpus": (
        "reformer_ko.data.prepare:add_prepare_corpus_arguments",
        "a corpus (one sentence per line) from a Wikipedia dump, JSON Lines or plain text",
    ),
    "train-tokenizer": (
        "reformer_ko.tokenization:add_train_tokenizer_arguments",
        "a WordPiece tokenizer from a corpus",
    ),
    "evaluate-korquad": (
        "reformer_ko.korquad.metric:add_evaluate_arguments",
        "score a predictions file with the official KorQuAD v1.0 metric",
    ),
}

# Training commands: name -> (task -> "module:function"), each `function(argv) -> metrics`. A single task is "".
TRAINING_COMMANDS = {
    "pretrain": {
        "mlm": "reformer_ko.commands.pretrain:mlm",
        "clm": "reformer_ko.commands.pretrain:clm",
        "electra": "reformer_ko.commands.pretrain:electra",
    },
    "korquad": {"": "reformer_ko.commands.korquad:main"},
}
TRAINING_HELP = {
    "pretrain": "pretrain a masked LM, causal LM or ELECTRA model on a corpus (run_mlm.py-style arguments)",
    "korquad": "fine-tune, evaluate and predict on KorQuAD v1.0 (run_qa.py-style arguments)",
}


def integer_at_least(minimum: int):
    """An argparse type: an integer not below `minimum` (argparse then reports anything else as a usage error)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def load(target: str):
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reformer-ko", description="Korean Reformer language models.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, help) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help)
        subparser.set_defaults(handler=load(target)(subparser))
    for name, tasks in TRAINING_COMMANDS.items():
        # Listed for --help; main() hands their arguments over before argparse reads them.
        usage = f"reformer-ko {name} {'{' + ','.join(tasks) + '} ' if '' not in tasks else ''}[--help] ARGUMENTS"
        subparsers.add_parser(name, help=TRAINING_HELP[name], usage=usage, add_help=False)
    return parser


def run_entry_point(name: str, function, *args) -> int:
    """Call `function(*args)` under the error policy of the module docstring; returns the exit status (the
    function's own, when it returns one)."""
    try:
        result = function(*args)
    except (UserInputError, OSError, FloatingPointError) as error:
        if os.environ.get("REFORMER_KO_DEBUG"):
            raise
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ArgumentError) else 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def run_training_command(argv) -> int:
    """`reformer-ko pretrain TASK ARGUMENTS` or `reformer-ko korquad ARGUMENTS`."""
    name, rest = argv[0], list(argv[1:])
    tasks = TRAINING_COMMANDS[name]
    choices = ", ".join(tasks)
    if "" not in tasks and rest and rest[0] in ("-h", "--help"):
        print(f"usage: reformer-ko {name} {{{choices}}} ARGUMENTS\n\n{TRAINING_HELP[name]}; "
              f"`reformer-ko {name} TASK --help` lists a task's arguments.")
        return 0
    task = "" if "" in tasks else (rest.pop(0) if rest else None)
    if task not in tasks:
        print(f"usage: reformer-ko {name} {{{choices}}} ARGUMENTS", file=sys.stderr)
        got = "" if task is None else f", got {task!r}"
        print(f"reformer-ko {name}: error: choose a task: one of {choices}{got}", file=sys.stderr)
        return 2
    return run_entry_point(f"reformer-ko {name} {task}".rstrip(), load(tasks[task]), rest)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(argument) for argument in argv]
    if argv and argv[0] in TRAINING_COMMANDS:
        return run_training_command(argv)
    args = build_parser().parse_args(argv)
    return run_entry_point(f"reformer-ko {args.command}", args.handler, args)


if __name__ == "__main__":
    raise SystemExit(main())
