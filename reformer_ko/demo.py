"""`reformer-ko demo`: the whole road on data the package ships, in a few minutes on a laptop CPU.

It trains a WordPiece tokenizer, pretrains a tiny masked LM (and, with `--all`, a causal LM and ELECTRA),
fine-tunes it on a KorQuAD-format set and scores held-apart questions with the official metric, then reloads the
Hub-ready checkpoint with `AutoModelForQuestionAnswering` and `pipeline("question-answering")`. The training steps
are the training commands themselves (`reformer-ko pretrain`, `reformer-ko korquad`) at a tiny size. The console
shows one progress bar per step and a summary; the full logs go to `demo.log` in the output directory.
"""

import json
import time
from pathlib import Path

from tqdm.auto import tqdm
from transformers import TrainerCallback

from .cli import integer_at_least

DEMO_DATA = Path(__file__).parent / "demo_data"
# Small enough to train 600 steps on two CPU cores in about a minute. Learned absolute positions: at this size
# they learn in a few hundred steps what rotary positions take longer to.
TINY_MODEL = (
    "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,max_position_embeddings=256,bucket_size=32,num_hashes=2,"
    'position_embedding_type="absolute"'
)
LOG_NAME = "demo.log"


def add_demo_arguments(parser):
    parser.description = __doc__.splitlines()[0]
    parser.add_argument("--corpus", nargs="+", default=[str(DEMO_DATA / "corpus.txt")], help="pretraining corpus")
    parser.add_argument(
        "--korquad-train", default=str(DEMO_DATA / "korquad_train.json"), help="KorQuAD-format QA set to fine-tune on"
    )
    parser.add_argument(
        "--korquad-eval", default=str(DEMO_DATA / "korquad_eval.json"), help="KorQuAD-format QA set to score"
    )
    parser.add_argument("--output-dir", default="outputs/demo", help="where everything is written")
    parser.add_argument("--steps", type=integer_at_least(1), default=600, help="training steps of each pretraining run")
    parser.add_argument("--qa-steps", type=integer_at_least(1), default=400, help="fine-tuning steps on the QA set")
    parser.add_argument("--vocab-size", type=integer_at_least(1), default=8000, help="WordPiece vocabulary size")
    parser.add_argument("--all", action="store_true", help="also pretrain a causal LM and ELECTRA")
    return run_demo


class TrainingProgress(TrainerCallback):
    """One progress bar over a run's training steps, with the latest logged loss."""

    def __init__(self, description):
        self.description = description
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = tqdm(total=state.max_steps, desc=self.description, unit="step", leave=True)
        self.bar.update(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.2f}")

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


def training_arguments(output_dir, steps):
    """The demo's Trainer options: seeded, no checkpoints, no per-step output (logged to the log file)."""
    return [
        "--output_dir", output_dir, "--max_steps", steps, "--per_device_train_batch_size", 8,
        "--per_device_eval_batch_size", 16, "--learning_rate", "1e-3", "--warmup_steps", steps // 10,
        "--logging_steps", max(1, steps // 10), "--save_strategy", "no", "--report_to", "none", "--seed", 42,
        "--disable_tqdm", "true",
    ]  # fmt: skip


def losses(output_dir):
    """First and last logged training loss of a finished run."""
    history = json.loads((Path(output_dir) / "trainer_state.json").read_text())["log_history"]
    logged = [entry["loss"] for entry in history if "loss" in entry]
    return logged[0], logged[-1]


def answer_a_question(qa_dir, eval_file):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

    from .korquad import load_korquad  # importing reformer_ko registers the Auto classes and the pipeline

    model = AutoModelForQuestionAnswering.from_pretrained(qa_dir)
    answerer = pipeline("question-answering", model=model, tokenizer=AutoTokenizer.from_pretrained(qa_dir))
    example = load_korquad(eval_file)[0]
    answer = answerer(question=example["question"], context=example["context"])["answer"]
    return example["question"], answer, example["answers"]["text"][0]


def run_demo(args):
    import torch

    from .training.run import log_to_file, restore_console_logging

    # The demo's models are tiny: intra-op threads gain nothing and, on a busy machine, cost many times the step.
    torch.set_num_threads(1)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / LOG_NAME
    log_file.write_text("", encoding="utf-8")
    log_to_file(log_file)
    try:
        summary = walk_the_road(args, out, log_file)
    finally:
        restore_console_logging()
    print("reformer-ko demo: summary\n")
    for name, result, seconds in summary:
        print(f"  {name:<58} {seconds:7.1f} s   {result}")
    print(
        f"\nEverything is in {out}/; the full logs in {log_file}. For your own data (the quickstart, docs/quickstart.md in reformer-ko's sources), e.g.:\n"
        f"  reformer-ko train-tokenizer --corpus kowiki.txt --output tokenizer\n"
        f"  reformer-ko pretrain mlm --config_preset mlm-small --tokenizer_name tokenizer --train_file kowiki.txt "
        f"--do_train --do_eval --output_dir mlm-small\n"
        f"  reformer-ko korquad --model_name_or_path mlm-small --train_file KorQuAD_v1.0_train.json "
        f"--validation_file KorQuAD_v1.0_dev.json --do_train --do_eval --output_dir korquad\n"
    )
    return 0


def walk_the_road(args, out, log_file):
    """The demo's steps, each with its progress bar; returns (name, result, seconds) per step."""
    from .commands import korquad, pretrain
    from .tokenization import train_tokenizer

    summary = []

    def step(name, action):
        print(f"{name}", flush=True)
        started = time.perf_counter()
        result = action()
        summary.append((name, result, time.perf_counter() - started))
        print(f"  → {result}\n", flush=True)

    def pretrain_step(command, output_dir, description, extra, config_overrides=TINY_MODEL):
        arguments = [
            "--config_preset", "mlm-small", "--config_overrides", config_overrides, "--tokenizer_name",
            tokenizer_dir, "--train_file", *args.corpus, "--validation_split_percentage", 10, "--do_train",
            "--do_eval", *extra, *training_arguments(output_dir, args.steps),
        ]  # fmt: skip
        command(arguments, log_file=log_file, callbacks=[TrainingProgress(description)])
        first, last = losses(output_dir)
        return f"loss {first:.2f} → {last:.2f} in {args.steps} steps"

    tokenizer_dir = out / "tokenizer"
    step(
        "1. WordPiece tokenizer",
        lambda: f"{len(train_tokenizer(args.corpus, tokenizer_dir, vocab_size=args.vocab_size, show_progress=True))} tokens",
    )
    step(
        "2. masked LM pretraining",
        # Sparse prediction: the LM head only at the masked positions, the same loss for less work.
        lambda: pretrain_step(
            pretrain.mlm, out / "mlm", "masked LM", ["--max_seq_length", 128], TINY_MODEL + ",sparse_prediction=true"
        ),
    )
    if args.all:
        step(
            "2b. causal LM pretraining",
            lambda: pretrain_step(pretrain.clm, out / "clm", "causal LM", ["--block_size", 128]),
        )
        step(
            "2c. ELECTRA pretraining",
            lambda: pretrain_step(pretrain.electra, out / "electra", "ELECTRA", ["--max_seq_length", 128]),
        )

    qa_dir = out / "korquad"

    def fine_tune():
        metrics = korquad.main(
            ["--model_name_or_path", out / "mlm", "--train_file", args.korquad_train,
             "--validation_file", args.korquad_eval, "--do_train", "--do_eval", "--max_seq_length", 256,
             "--doc_stride", 64, "--max_query_length", 32, *training_arguments(qa_dir, args.qa_steps)],
            log_file=log_file,
            callbacks=[TrainingProgress("KorQuAD")],
        )  # fmt: skip
        first, last = losses(qa_dir)
        return (
            f"loss {first:.2f} → {last:.2f}; EM {metrics['eval_exact_match']:.1f} / F1 {metrics['eval_f1']:.1f} "
            f"on held-apart questions (official KorQuAD v1.0 metric)"
        )

    step("3. KorQuAD fine-tuning and evaluation", fine_tune)
    def describe_checkpoint():
        code = sorted(path.name for path in qa_dir.glob("*.py"))
        return f"{qa_dir}: model.safetensors, config.json, tokenizer, model card (README.md), model code ({', '.join(code)})"

    step("4. Hub-ready checkpoint", describe_checkpoint)

    def ask():
        question, answer, gold = answer_a_question(qa_dir, args.korquad_eval)
        return f"Q: {question} → A: {answer!r} (gold: {gold!r})"

    step("5. pipeline('question-answering') from the saved checkpoint", ask)
    return summary
