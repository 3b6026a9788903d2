"""The bad-input catalogue: for every entry point, wrong inputs a user really gives and what reformer-ko answers.

Each `Case` is run by tests/test_bad_input.py, which asserts the exit status and that there is no traceback
(commands) or the `ValueError` (Python entry points), that the message matches, and that nothing in the user's
directories was written or changed. docs/errors.md is this catalogue rendered (`python tests/bad_input_catalogue.py` writes it; a
test checks it is up to date), so the page of errors and the errors themselves cannot drift apart.

Arguments name files of the test's workspace in braces (`{corpus}`, `{tokenizer}`, ...): see
`tests/test_bad_input.py::workspace`.
"""

import re
from dataclasses import dataclass
from pathlib import Path

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


@dataclass(frozen=True)
class Case:
    """One wrong input and the answer to it."""

    entry: str  # the entry point: a command (`reformer-ko ...`) or a Python call
    situation: str  # what the user did
    arguments: tuple = ()  # a command's arguments (after `entry`), with workspace names in braces; for a Python
    # entry point, the name of the call in tests/test_bad_input.py's PYTHON_CALLS
    message: str = ""  # what the answer says: a regular expression matching the one-line message
    fix: str = ""  # what to do, for docs/errors.md
    status: int | None = 1  # a command's exit status (2: argument errors); None for Python entry points, which raise
    example: str = ""  # the message as docs/errors.md shows it (must match `message`)

    @property
    def id(self):
        words = re.sub(r"[^a-z0-9]+", "-", self.situation.lower()).strip("-")
        return f"{self.entry.replace('reformer-ko ', '')}:{words}"


TRAIN_TOKENIZER = "reformer-ko train-tokenizer"
PRETRAIN_MLM = "reformer-ko pretrain mlm"
PRETRAIN_CLM = "reformer-ko pretrain clm"
PRETRAIN_ELECTRA = "reformer-ko pretrain electra"
KORQUAD = "reformer-ko korquad"
EVALUATE_KORQUAD = "reformer-ko evaluate-korquad"
PREPARE_CORPUS = "reformer-ko prepare-corpus"
DEMO = "reformer-ko demo"
MODEL_FORWARD = "model(...)"
FROM_PRETRAINED = "from_pretrained(...)"
PIPELINE = "pipeline(...)"

NEW_MLM = ("--config_preset", "mlm-small", "--config_overrides", "{tiny}", "--tokenizer_name", "{tokenizer}")
RUN = ("--do_train", "--max_steps", "2", "--use_cpu", "--report_to", "none", "--output_dir", "{output}")

CASES = [
    # train-tokenizer ------------------------------------------------------------------------------------------------
    Case(
        TRAIN_TOKENIZER, "The corpus path does not exist",
        ("--corpus", "{missing}", "--output", "{output}"),
        r"corpus path not found: .*missing\.txt",
        "Check the path; `--corpus` takes files, directories of `*.txt` and glob patterns.",
        example="corpus path not found: missing.txt",
    ),
    Case(
        TRAIN_TOKENIZER, "The corpus holds only blank lines, a byte-order mark or Unicode spaces",
        ("--corpus", "{blank}", "--output", "{output}"),
        r"blank\.txt: no sentences",
        "Give the corpus file itself: one sentence per line, a blank line between documents (`reformer-ko "
        "prepare-corpus` makes one from raw text).",
        example="blank.txt: no sentences (the file is empty or its lines hold only spaces, byte-order marks, zero-width or control characters); give a file with one sentence per line",
    ),
    Case(
        TRAIN_TOKENIZER, "The corpus is not UTF-8 (e.g. cp949)",
        ("--corpus", "{cp949}", "--output", "{output}"),
        r"cp949\.txt:1: invalid UTF-8 at byte offset \d+",
        "Convert the file to UTF-8 (`iconv -f cp949 -t utf-8`), or pass `--encoding-errors replace` to read "
        "undecodable bytes as U+FFFD.",
        example="cp949.txt:1: invalid UTF-8 at byte offset 0 (pass encoding_errors='replace' to read it as U+FFFD)",
    ),
    Case(
        TRAIN_TOKENIZER, "The output is an existing file",
        ("--corpus", "{corpus}", "--output", "{corpus}"),
        r"corpus\.txt is a file, but a tokenizer is saved as a directory",
        "Give a directory path for `--output`.",
        example="corpus.txt is a file, but a tokenizer is saved as a directory: give a directory path for the output",
    ),
    Case(
        TRAIN_TOKENIZER, "A negative minimum frequency",
        ("--corpus", "{corpus}", "--output", "{output}", "--min-frequency", "-1"),
        r"argument --min-frequency: must be at least 0, got -1",
        "Give 0 or more.",
        status=2,
        example="argument --min-frequency: must be at least 0, got -1",
    ),
    Case(
        TRAIN_TOKENIZER, "The output directory holds a model",
        ("--corpus", "{corpus}", "--output", "{mlm}"),
        r"holds files that are not a tokenizer's .*--overwrite",
        "Give another `--output`, or pass `--overwrite` to replace the directory's tokenizer files.",
        example="mlm holds files that are not a tokenizer's (...): give a new or tokenizer-only directory, or pass --overwrite (overwrite=True) to replace only its tokenizer files",
    ),
    # pretrain -----------------------------------------------------------------------------------------------------
    Case(
        PRETRAIN_MLM, "A new model without a tokenizer",
        ("--config_preset", "mlm-small", "--train_file", "{corpus}", *RUN),
        r"A new model needs --tokenizer_name",
        "Train one with `reformer-ko train-tokenizer` and pass its directory as `--tokenizer_name`.",
        status=2,
        example="A new model needs --tokenizer_name: train one with `reformer-ko train-tokenizer --corpus ... --output DIR`.",
    ),
    Case(
        PRETRAIN_MLM, "A config override names no config field",
        (*NEW_MLM, "--config_overrides", "hidden_sise=64", "--train_file", "{corpus}", *RUN),
        r"--config_overrides: 'hidden_sise' is not a field of ReformerKoConfig; did you mean 'hidden_size'\?",
        "Fix the field's name; docs/models.md lists the config's fields.",
        status=2,
        example="--config_overrides: 'hidden_sise' is not a field of ReformerKoConfig; did you mean 'hidden_size'?",
    ),
    Case(
        PRETRAIN_MLM, "A config override of the wrong kind",
        (*NEW_MLM, "--config_overrides", "hidden_size=big", "--train_file", "{corpus}", *RUN),
        r"--config_overrides: hidden_size must be an integer, got 'big'",
        "Give a value of the field's kind: JSON, or Python's True/False/None.",
        status=2,
        example="--config_overrides: hidden_size must be an integer, got 'big'.",
    ),
    Case(
        PRETRAIN_MLM, "A config that cannot work",
        (*NEW_MLM, "--config_overrides", "hidden_size=30", "--train_file", "{corpus}", *RUN),
        r"Invalid ReformerKoConfig: hidden_size \(30\) must be divisible by num_attention_heads",
        "Change the fields the message names.",
        example="Invalid ReformerKoConfig: hidden_size (30) must be divisible by num_attention_heads (8); change one of them.",
    ),
    Case(
        PRETRAIN_MLM, "A config value out of range",
        (*NEW_MLM, "--config_overrides", "bucket_size=0", "--train_file", "{corpus}", *RUN),
        r"Invalid ReformerKoConfig: bucket_size must be an integer >= 1, got 0",
        "Give the field a value in its range (docs/models.md lists them).",
        example="Invalid ReformerKoConfig: bucket_size must be an integer >= 1, got 0.",
    ),
    Case(
        PRETRAIN_MLM, "The corpus holds no sentence",
        (*NEW_MLM, "--train_file", "{blank}", *RUN),
        r"blank\.txt: no sentences",
        "Give the corpus file itself (see above).",
        example="blank.txt: no sentences (the file is empty or its lines hold only spaces, byte-order marks, zero-width or control characters); give a file with one sentence per line",
    ),
    Case(
        PRETRAIN_MLM, "The tokenizer is not the one the model was trained with",
        ("--model_name_or_path", "{mlm}", "--tokenizer_name", "{other_tokenizer}", "--train_file", "{corpus}", *RUN),
        r"is not the one .* was trained with",
        "Pass the tokenizer saved with the model (its own directory): another vocabulary gives other tokens the "
        "same ids.",
        example="the tokenizer other-tokenizer (vocabulary sha256:...) is not the one mlm was trained with (vocab_fingerprint sha256:...): its ids mean other tokens; pass the tokenizer saved with the model (its directory)",
    ),
    Case(
        PRETRAIN_MLM, "The model directory does not exist",
        ("--model_name_or_path", "{missing_dir}", "--train_file", "{corpus}", *RUN),
        r"--model_name_or_path .*missing: not a local directory",
        "Check the path (or the Hub id).",
        example="--model_name_or_path missing: not a local directory, and loading it from the Hub failed (...). Check the path.",
    ),
    Case(
        PRETRAIN_MLM, "The output directory holds something else",
        (*NEW_MLM, "--train_file", "{corpus}", *RUN[:-1], "{mlm}"),
        r"--output_dir .*mlm holds files this run did not write .*--overwrite_output_dir",
        "Give another `--output_dir`, or pass `--overwrite_output_dir` to train into it anyway.",
        example="--output_dir mlm holds files this run did not write (config.json, ...). Give another --output_dir, or pass --overwrite_output_dir to train into it anyway (its checkpoints are deleted, its other files overwritten).",
    ),
    Case(
        PRETRAIN_MLM, "Blocks longer than the model's positions",
        (*NEW_MLM, "--train_file", "{corpus}", "--max_seq_length", "512", *RUN),
        r"max_seq_length=512 is longer than",
        "Lower `--max_seq_length` (its default is the model's `max_position_embeddings`).",
        example="max_seq_length=512 is longer than the tokenizer's model_max_length=128; ...",
    ),
    Case(
        PRETRAIN_MLM, "No validation documents left",
        (*NEW_MLM, "--train_file", "{corpus}", "--validation_split_percentage", "100", *RUN),
        r"--validation_split_percentage must be in \[0, 100\), got 100",
        "Give a percentage below 100, or `--validation_file`.",
        status=2,
        example="--validation_split_percentage must be in [0, 100), got 100.0.",
    ),
    Case(
        PRETRAIN_MLM, "Evaluation without validation data",
        (*NEW_MLM, "--train_file", "{corpus}", "--validation_split_percentage", "0", "--do_eval", *RUN),
        r"--do_eval needs validation data",
        "Give `--validation_file`, or a `--validation_split_percentage` above 0.",
        status=2,
        example="--do_eval needs validation data: give --validation_file, or a --validation_split_percentage above 0.",
    ),
    Case(
        PRETRAIN_MLM, "A streamed corpus without a number of steps",
        (*NEW_MLM, "--train_file", "{corpus}", "--streaming", "--do_train", "--use_cpu", "--report_to", "none",
         "--output_dir", "{output}"),
        r"--streaming needs --max_steps",
        "Give `--max_steps`: a stream has no length to count epochs in.",
        status=2,
        example="--streaming needs --max_steps: a streamed corpus has no length to make epochs of.",
    ),
    Case(
        PRETRAIN_MLM, "Resuming from a checkpoint that does not exist",
        (*NEW_MLM, "--train_file", "{corpus}", *RUN, "--resume_from_checkpoint", "{missing_dir}"),
        r"--resume_from_checkpoint: .*missing is not a directory",
        "Give a `checkpoint-N` directory, or `last`.",
        example="--resume_from_checkpoint: missing is not a directory; give a checkpoint-N directory.",
    ),
    Case(
        PRETRAIN_CLM, "A causal LM from a masked LM's config file",
        ("--config_name", "{mlm}", "--tokenizer_name", "{tokenizer}", "--train_file", "{corpus}", "--block_size",
         "256", *RUN),
        r"block_size=256 is longer than",
        "Lower `--block_size` to the model's positions or give a config with more positions.",
        example="block_size=256 is longer than the tokenizer's model_max_length=128; ...",
    ),
    Case(
        PRETRAIN_ELECTRA, "A generator wider than the discriminator",
        (*NEW_MLM, "--train_file", "{corpus}", "--generator_size_ratio", "2", *RUN),
        r"generator size ratio must be in \(0, 1\], got 2",
        "Give a ratio in (0, 1]; a third (the default) is ELECTRA's advice.",
        example="generator size ratio must be in (0, 1], got 2.0",
    ),
    # korquad -------------------------------------------------------------------------------------------------------
    Case(
        KORQUAD, "Fine-tuning into the pretrained model's directory",
        ("--model_name_or_path", "{mlm}", "--train_file", "{korquad}", "--max_seq_length", "128", *RUN[:-1], "{mlm}"),
        r"--output_dir .*mlm holds files this run did not write",
        "Give another `--output_dir`: fine-tuning would overwrite the pretrained model.",
        example="--output_dir mlm holds files this run did not write (config.json, ...). Give another --output_dir, or pass --overwrite_output_dir to train into it anyway (...).",
    ),
    Case(
        KORQUAD, "A training stage without its file",
        ("--model_name_or_path", "{mlm}", *RUN),
        r"--do_train needs --train_file",
        "Pass `--train_file` (or drop `--do_train`).",
        example="--do_train needs --train_file.",
    ),
    Case(
        KORQUAD, "A data file that is not JSON",
        ("--model_name_or_path", "{mlm}", "--train_file", "{corpus}", *RUN),
        r"--train_file must be a KorQuAD \.json \(or \.jsonl\) file",
        "Give the KorQuAD JSON file.",
        status=2,
        example="--train_file must be a KorQuAD .json (or .jsonl) file, got corpus.txt",
    ),
    Case(
        KORQUAD, "A malformed KorQuAD file",
        ("--model_name_or_path", "{mlm}", "--train_file", "{truncated_json}", *RUN),
        r"truncated\.json: not valid JSON",
        "Download the file again; KorQuAD v1.0 is the SQuAD v1.1 layout.",
        example="truncated.json: not valid JSON at line 1, column 80 (Unterminated string starting at)",
    ),
    Case(
        KORQUAD, "An answer that is not at its answer_start",
        ("--model_name_or_path", "{mlm}", "--train_file", "{moved_answer}", *RUN),
        r"invalid example\(s\) in .*moved_answer\.json",
        "Fix the examples the message lists, or pass `--skip_invalid_examples` to leave them out.",
        example="1 invalid example(s) in moved_answer.json: moved_answer.json: article 0 ('세종대왕'), paragraph 0, question 0, id 'sejong-0-0': answer 0 '1443년' is not at answer_start 0: the context there reads '세종대왕은'; the text occurs at [46]. Fix them, or leave them out (--skip_invalid_examples; skip_invalid=True in Python): they are then counted in a warning.",
    ),
    Case(
        KORQUAD, "A checkpoint of another model type",
        ("--model_name_or_path", "{bert}", "--train_file", "{korquad}", *RUN),
        r"is a 'bert' checkpoint; reformer-ko trains reformer-ko models",
        "Start from a reformer-ko checkpoint, or a new model (`--config_preset`).",
        example="bert is a 'bert' checkpoint; reformer-ko trains reformer-ko models: pass a checkpoint saved by reformer-ko, or --config_preset to start a new one.",
    ),
    Case(
        KORQUAD, "A window stride as long as the window",
        ("--model_name_or_path", "{mlm}", "--train_file", "{korquad}", "--max_seq_length", "128", "--doc_stride",
         "128", *RUN),
        r"doc_stride \(128\) must be smaller than the room left for the context",
        "Lower `--doc_stride` (or `--max_query_length`).",
        example="doc_stride (128) must be smaller than the room left for the context, max_seq_length - max_query_length - 3 = 61; lower doc_stride or max_query_length",
    ),
    # evaluate-korquad ----------------------------------------------------------------------------------------------
    Case(
        EVALUATE_KORQUAD, "The dataset file does not exist",
        ("{missing}", "{predictions}"),
        r"missing\.txt: no such file",
        "Check the path of the KorQuAD dataset.",
        example="missing.txt: no such file",
    ),
    Case(
        EVALUATE_KORQUAD, "The dataset given as the predictions",
        ("{korquad}", "{korquad}"),
        r"this is a KorQuAD dataset, not predictions",
        "Give the predictions file (`{\"id\": \"answer text\", ...}`), e.g. a run's `eval_predictions.json`.",
        example="korquad_train.json: this is a KorQuAD dataset, not predictions: give the predictions file, a JSON object mapping question id to answer text (e.g. a run's eval_predictions.json), as the second argument",
    ),
    # prepare-corpus ------------------------------------------------------------------------------------------------
    Case(
        PREPARE_CORPUS, "A file that is not a Wikipedia dump (an error page saved as .xml)",
        ("--input", "{not_a_dump}", "--output", "{output}"),
        r"kowiki\.xml is not a MediaWiki XML dump \(its root element is <html>",
        "Download a pages-articles dump, e.g. `kowiki-latest-pages-articles.xml.bz2`.",
        example="kowiki.xml is not a MediaWiki XML dump (its root element is <html>, not <mediawiki>); download a pages-articles dump, e.g. kowiki-latest-pages-articles.xml.bz2",
    ),
    Case(
        PREPARE_CORPUS, "A truncated .bz2 dump",
        ("--input", "{truncated_bz2}", "--output", "{output}"),
        r"truncated\.xml\.bz2: the bz2 data ends early \(the file is truncated\)",
        "Download (or copy) the dump again; nothing of the partial run is kept.",
        example="truncated.xml.bz2: the bz2 data ends early (the file is truncated); download or copy it again",
    ),
    Case(
        PREPARE_CORPUS, "JSON Lines without the text field",
        ("--input", "{jsonl}", "--output", "{output}"),
        r"data\.jsonl:1: no field 'text' \(the first record has 'id', 'body'\)",
        "Pass `--text-field` with the field that holds the text (`paragraph.form` for the Modu corpus).",
        example="data.jsonl:1: no field 'text' (the first record has 'id', 'body'); pass --text-field with the one that holds the text (a dotted path reaches into objects)",
    ),
    Case(
        PREPARE_CORPUS, "No document survives",
        ("--input", "{blank}", "--format", "text", "--output", "{output}"),
        r"no document is left to write: 0 read",
        "Check `--format` and `--text-field`, or relax the cleaning options.",
        example="no document is left to write: 0 read; check --format and --text-field, or relax the cleaning options (--min-document-chars)",
    ),
    # demo ----------------------------------------------------------------------------------------------------------
    Case(
        DEMO, "Zero training steps",
        ("--steps", "0", "--output-dir", "{output}"),
        r"argument --steps: must be at least 1, got 0",
        "Give at least one step.",
        status=2,
        example="argument --steps: must be at least 1, got 0",
    ),
    # Python entry points -------------------------------------------------------------------------------------------
    Case(
        MODEL_FORWARD, "A token id outside the vocabulary", ("id_outside_the_vocabulary",),
        r"Token id 5000 is outside the vocabulary \[0, 120\) of this model",
        "Use the tokenizer the model was trained with (the one saved beside it).", status=None,
        example="Token id 5000 is outside the vocabulary [0, 120) of this model: the tokenizer does not match the model's config (vocab_size).",
    ),
    Case(
        MODEL_FORWARD, "Input longer than the model's positions", ("too_long",),
        r"Input of 257 tokens is longer than this model's max_position_embeddings \(256\)",
        "Truncate: `tokenizer(..., truncation=True, max_length=...)`.", status=None,
        example="Input of 257 tokens is longer than this model's max_position_embeddings (256): truncate it, e.g. tokenizer(..., truncation=True, max_length=256).",
    ),
    Case(
        MODEL_FORWARD, "Token ids that are not integers", ("float_ids",),
        r"input_ids must be integer token ids, got dtype torch\.float32",
        "Pass the tokenizer's ids (`torch.long`).", status=None,
        example="input_ids must be integer token ids, got dtype torch.float32: pass the tokenizer's ids (torch.long), e.g. tokenizer(text, return_tensors='pt').",
    ),
    Case(
        MODEL_FORWARD, "A batch of no rows", ("no_rows",),
        r"input_ids has no rows \(a batch of 0 sequences\)",
        "Pass at least one sequence.", status=None,
        example="input_ids has no rows (a batch of 0 sequences): pass at least one sequence.",
    ),
    Case(
        MODEL_FORWARD, "An attention mask of another shape", ("mask_shape",),
        r"attention_mask has shape \(2, 9\) but input_ids has shape \(2, 10\)",
        "Pass the mask the tokenizer made with the ids.", status=None,
        example="attention_mask has shape (2, 9) but input_ids has shape (2, 10); they must match.",
    ),
    Case(
        MODEL_FORWARD, "A segment id the model has no embedding for", ("segment_id",),
        r"token_type_ids must be in \[0, 2\) \(type_vocab_size\), got 2",
        "Use segment ids 0 and 1 (a question-context pair), or a config with more `type_vocab_size`.", status=None,
        example="token_type_ids must be in [0, 2) (type_vocab_size), got 2.",
    ),
    Case(
        MODEL_FORWARD, "Asking for attention weights", ("attention_weights",),
        r"reformer-ko models have no attention weights to return",
        "Leave `output_attentions` unset: LSH attention never builds the full attention matrix.", status=None,
        example="reformer-ko models have no attention weights to return: LSH attention attends within hash buckets and never builds the sequence x sequence matrix; leave output_attentions unset (False).",
    ),
    Case(
        FROM_PRETRAINED, "A truncated or corrupt weights file", ("truncated_weights",),
        r"could not be read .*: the file is truncated or corrupt",
        "Download or save the checkpoint again.", status=None,
        example="The weights in truncated-weights could not be read (Error while deserializing header: ...): the file is truncated or corrupt. Download or save the checkpoint again.",
    ),
    Case(
        FROM_PRETRAINED, "A checkpoint of another model type", ("other_model_type",),
        r"This checkpoint is a 'bert' model, not a 'reformer_ko' one",
        "Load it with its own classes, or point to a reformer-ko checkpoint.", status=None,
        example="This checkpoint is a 'bert' model, not a 'reformer_ko' one: load it with its own classes (e.g. transformers' AutoModel), or point to a reformer-ko checkpoint.",
    ),
    Case(
        PIPELINE, "A question without its context", ("question_without_context",),
        r"Give question= and context=",
        "Call `qa(question=..., context=...)` (or pass a dict with both).", status=None,
        example="Give question= and context= (or a dict with 'question' and 'context').",
    ),
]

ENTRY_NOTES = {
    TRAIN_TOKENIZER: "Trains the WordPiece tokenizer ([data.md](data.md)).",
    PRETRAIN_MLM: "The pretraining commands share their checks; `pretrain clm` and `pretrain electra` give the same answers "
    "to the same inputs ([pretraining.md](pretraining.md)).",
    PRETRAIN_CLM: "",
    PRETRAIN_ELECTRA: "",
    KORQUAD: "Fine-tuning and evaluation on KorQuAD ([korquad.md](korquad.md)).",
    EVALUATE_KORQUAD: "The official metric on a predictions file.",
    PREPARE_CORPUS: "Raw text to the corpus format ([data.md](data.md)).",
    DEMO: "",
    MODEL_FORWARD: "A model called from Python raises `ValueError` with the message (no exit status).",
    FROM_PRETRAINED: "`ReformerKoForMaskedLM.from_pretrained` and the Auto classes.",
    PIPELINE: "`pipeline(\"question-answering\")` and the other pipelines.",
}


def render_errors_page() -> str:
    """docs/errors.md: the catalogue as a page of errors, what they mean and what to do."""
    lines = [
        "# Errors and what they mean",
        "",
        "A wrong input to a reformer-ko command ends with one line on standard error, `<command>: error: <message>`,",
        "and exit status 1, or 2 for arguments that cannot work together; nothing is written. A traceback means a",
        "bug: please report it. `REFORMER_KO_DEBUG=1` shows the traceback of input errors too. Python entry points",
        "raise `ValueError` (reformer-ko's `UserInputError` is one) with the same messages.",
        "",
        "This page is generated from the bad-input catalogue that the tests run (`tests/bad_input_catalogue.py`;",
        "`python tests/bad_input_catalogue.py` writes it), so every error here is one the tests produce. Paths in the",
        "messages are shortened.",
        "",
    ]
    for entry in dict.fromkeys(case.entry for case in CASES):
        lines += [f"## `{entry}`", ""]
        if ENTRY_NOTES.get(entry):
            lines += [ENTRY_NOTES[entry], ""]
        lines += ["| situation | message | exit | what to do |", "|---|---|---|---|"]
        for case in CASES:
            if case.entry == entry:
                status = "—" if case.status is None else str(case.status)
                example = case.example.replace("|", "\\|")
                code = f"`` {example} ``" if "`" in example else f"`{example}`"
                lines.append(f"| {case.situation} | {code} | {status} | {case.fix} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    DOCS_PAGE.write_text(render_errors_page(), encoding="utf-8")
    print(f"wrote {DOCS_PAGE}")
