#!/usr/bin/env python
"""Fine-tune, evaluate and predict with reformer-ko models on KorQuAD v1.0, like transformers' run_qa.py.

    python examples/run_korquad.py --model_name_or_path path/to/reformer-ko-checkpoint \\
        --train_file train.json --validation_file dev.json --do_train --do_eval --output_dir outputs/korquad

The same as `reformer-ko korquad`, whose code (`reformer_ko.commands.korquad.main`) is part of the installed package:
this file is all a copy needs. Arguments are transformers' `TrainingArguments` (with `--overwrite_output_dir`) plus
the command's own (see `--help`), or one JSON file holding them all. It runs on several processes under
`accelerate launch` or `torchrun`.
"""

import sys

from reformer_ko.cli import run_entry_point
from reformer_ko.commands.korquad import main

if __name__ == "__main__":
    sys.exit(run_entry_point("run_korquad.py", main, sys.argv[1:]))
