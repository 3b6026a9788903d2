#!/usr/bin/env python
"""Pretrain a Korean Reformer ELECTRA model (replaced-token detection) on a corpus.

    python examples/run_electra.py --config_preset electra-small-discriminator --tokenizer_name tokenizer/ \\
        --train_file corpus/ --do_train --do_eval --output_dir electra-small

The same as `reformer-ko pretrain electra`, whose code (`reformer_ko.commands.pretrain.electra`) is part of the installed package:
this file is all a copy needs. Arguments are transformers' `TrainingArguments` (with `--overwrite_output_dir`) plus
the command's own (see `--help`), or one JSON file holding them all. It runs on several processes under
`accelerate launch` or `torchrun`.
"""

import sys

from reformer_ko.cli import run_entry_point
from reformer_ko.commands.pretrain import electra as main

if __name__ == "__main__":
    sys.exit(run_entry_point("run_electra.py", main, sys.argv[1:]))
