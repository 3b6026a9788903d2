#!/usr/bin/env python
"""Pretrain a Korean Reformer masked language model (BERT-style, no next-sentence prediction) on a corpus.

    python examples/run_mlm.py --config_preset mlm-small --tokenizer_name tokenizer/ \\
        --train_file corpus/ --do_train --do_eval --output_dir mlm-small

The same as `reformer-ko pretrain mlm`, whose code (`reformer_ko.commands.pretrain.mlm`) is part of the installed package:
this file is all a copy needs. Arguments are transformers' `TrainingArguments` (with `--overwrite_output_dir`) plus
the command's own (see `--help`), or one JSON file holding them all. It runs on several processes under
`accelerate launch` or `torchrun`.
"""

import sys

from reformer_ko.cli import run_entry_point
from reformer_ko.commands.pretrain import mlm as main

if __name__ == "__main__":
    sys.exit(run_entry_point("run_mlm.py", main, sys.argv[1:]))
