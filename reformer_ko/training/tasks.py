"""The pretraining tasks: what differs between masked LM, causal LM and ELECTRA once the model and the data are
built (metrics, model card wording, the Auto class to load the result with)."""

from collections.abc import Callable
from dataclasses import dataclass

from .metrics import argmax_logits, causal_lm_metrics, electra_eval_outputs, electra_metrics, masked_lm_metrics


@dataclass(frozen=True)
class PretrainingTask:
    """What differs between the three pretraining scripts once the model and the data are built."""

    name: str
    auto_class: str
    pipeline_tag: str | None
    packing: str
    preprocess_logits_for_metrics: Callable
    compute_metrics: Callable
    reports_perplexity: bool
    usage: str


MASKED_LM = PretrainingTask(
    name="masked language modeling",
    auto_class="AutoModelForMaskedLM",
    pipeline_tag="fill-mask",
    packing="each document's sentences packed greedily into `[CLS] … [SEP]` blocks",
    preprocess_logits_for_metrics=argmax_logits,
    compute_metrics=masked_lm_metrics,
    reports_perplexity=True,
    usage="""from transformers import pipeline

fill_mask = pipeline("fill-mask", model="{model}", trust_remote_code=True)
fill_mask("김치는 한국의 대표적인 [MASK]이다.")""",
)
CAUSAL_LM = PretrainingTask(
    name="causal language modeling",
    auto_class="AutoModelForCausalLM",
    pipeline_tag="text-generation",
    packing="documents joined by `[SEP]` (end of document) and cut into fixed-length blocks",
    preprocess_logits_for_metrics=argmax_logits,
    compute_metrics=causal_lm_metrics,
    reports_perplexity=True,
    usage="""from transformers import pipeline

generate = pipeline("text-generation", model="{model}", trust_remote_code=True)
generate("김치는", max_new_tokens=40, do_sample=True, top_p=0.95)""",
)
ELECTRA = PretrainingTask(
    name="ELECTRA replaced-token detection",
    auto_class="AutoModelForPreTraining",
    pipeline_tag=None,
    packing="each document's sentences packed greedily into `[CLS] … [SEP]` blocks",
    preprocess_logits_for_metrics=electra_eval_outputs,
    compute_metrics=electra_metrics,
    reports_perplexity=False,
    usage="""from transformers import AutoModelForQuestionAnswering, AutoTokenizer

# The discriminator is the model to fine-tune; only the task head is new.
tokenizer = AutoTokenizer.from_pretrained("{model}")
model = AutoModelForQuestionAnswering.from_pretrained("{model}", trust_remote_code=True)
# The generator (a masked LM) is in the generator/ folder:
# AutoModelForMaskedLM.from_pretrained("{model}", subfolder="generator", trust_remote_code=True)""",
)
