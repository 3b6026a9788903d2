#!/usr/bin/env python
"""Pretrain a Korean Reformer causal language model on a corpus, by default on 5,120-token blocks.

    python examples/run_clm.py --config_preset clm-gpt3-small --tokenizer_name tokenizer/ \\
        --train_file corpus/ --do_train --do_eval --output_dir clm-gpt3-small

The same as `reformer-ko pretrain clm`, whose code (`reformer_ko.commands.pretrain.clm`) is part of the installed package:
this file is all a copy needs. Arguments are transformers' `TrainingArguments` (with `--overwrite_output_dir`) plus
the command's own (see `--help`), or one JSON file holding them all. It runs on several processes under
`accelerate launch` or `torchrun`.
"""

import sys

from reformer_ko.cli import run_entry_point
from reformer_ko.commands.pretrain import clm as main

if __name__ == "__main__":
    sys.exit(run_entry_point("run_clm.py", main, sys.argv[1:]))
