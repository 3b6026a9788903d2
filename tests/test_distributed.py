"""Two CPU processes (DDP over gloo) run the unchanged scripts with synchronized gradients."""

import json
import math
import re
import socket

import pytest
import torch
from pretraining_fixtures import EXAMPLES, TINY_ELECTRA, TINY_MLM, common_arguments, run_python, small_tokenizer

# Runs an example script, then saves this process's parameters to rank<N>.pt in the output directory.
SAVE_RANK_PARAMETERS = """
import os, runpy, sys
import torch
from reformer_ko.training import PretrainingTrainer

train = PretrainingTrainer.train

def train_and_save_parameters(self, *args, **kwargs):
    result = train(self, *args, **kwargs)
    model = self.accelerator.unwrap_model(self.model)
    parameters = {name: tensor.detach().cpu() for name, tensor in model.named_parameters()}
    torch.save(parameters, os.path.join(self.args.output_dir, f"rank{self.args.process_index}.pt"))
    return result

PretrainingTrainer.train = train_and_save_parameters
script, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(port):
    # `accelerate launch --cpu --num_processes 2` starts a single process; `--multi_gpu` with the script's
    # `--use_cpu` starts two CPU processes.
    return [
        "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--num_cpu_threads_per_process", "1",
        "--main_process_port", str(port),
    ]  # fmt: skip


def torchrun(port):
    return ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]


# The MLM run also evaluates, with sparse prediction, on 5 blocks: the second process's batch is padded with a
# repeated block that the Trainer drops again, row by row, before the metrics.
EVAL_5_BLOCKS = ["--do_eval", "--max_eval_samples", "5"]


@pytest.mark.parametrize(
    "launcher, script, config_overrides, eval_arguments",
    [
        (accelerate_launch, "run_mlm.py", TINY_MLM + ",sparse_prediction=true", EVAL_5_BLOCKS),
        # ELECTRA shares embeddings between two models; weight_tie needs DDP's static graph.
        (torchrun, "run_electra.py", TINY_ELECTRA + ",weight_tie=true", []),
    ],
    ids=["accelerate-mlm-sparse-eval", "torchrun-electra-weight-tie"],
)
def test_two_processes_end_with_identical_parameters(launcher, script, config_overrides, eval_arguments, tmp_path):
    driver = tmp_path / "save_rank_parameters.py"
    driver.write_text(SAVE_RANK_PARAMETERS)
    output_dir = tmp_path / "output"
    result = run_python(
        [
            driver,
            EXAMPLES / script,
            *common_arguments(small_tokenizer(tmp_path / "tokenizer"), output_dir, tmp_path / "cache"),
            "--config_preset", "mlm-small" if script == "run_mlm.py" else "electra-small-discriminator",
            "--config_overrides", config_overrides,
            "--validation_split_percentage", "10" if eval_arguments else "0",
            "--max_train_samples", "16",
            "--do_train",
            *eval_arguments,
            "--max_steps", "6",
            "--per_device_train_batch_size", "4",
            "--learning_rate", "3e-3",
            "--logging_steps", "1",
            "--save_strategy", "no",
        ],
        tmp_path,
        launcher=launcher(free_port()),
        timeout=300,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert {int(rank) for rank in re.findall(r"Process rank (\d) of 2", log)} == {0, 1}
    assert "Total train batch size (w. parallel, distributed & accumulation) = 8" in log
    # 16 blocks in batches of 4 per process: 2 steps per epoch with 2 processes, so 6 steps are 3 epochs.
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["epoch"] == 3.0
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4, 5, 6]

    if eval_arguments:
        metrics = json.loads((output_dir / "eval_results.json").read_text())
        assert 0 <= metrics["eval_masked_token_accuracy"] <= 1 and math.isfinite(metrics["eval_loss"]), metrics

    rank0, rank1 = torch.load(output_dir / "rank0.pt"), torch.load(output_dir / "rank1.pt")
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
