"""The `reformer-ko` command line: one sub-command per capability, each defined beside its code."""

import argparse
import importlib

# sub-command name -> "module:function"; the function takes the sub-parser and returns the handler
# `handler(args) -> int` that runs the command.
COMMANDS = {
    "demo": "reformer_ko.demo:add_demo_arguments",
    "evaluate-korquad": "reformer_ko.korquad.metric:add_evaluate_arguments",
    "prepare-corpus": "reformer_ko.data.prepare:add_prepare_corpus_arguments",
    "train-tokenizer": "reformer_ko.tokenization:add_train_tokenizer_arguments",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reformer-ko", description="Korean Reformer language models.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, target in COMMANDS.items():
        module_name, function_name = target.split(":")
        add_arguments = getattr(importlib.import_module(module_name), function_name)
        subparser = subparsers.add_parser(name)
        subparser.set_defaults(handler=add_arguments(subparser))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args) or 0


if __name__ == "__main__":
    raise SystemExit(main())
