"""reformer-ko: Korean Reformer language models for Hugging Face transformers.

Importing the package registers the models with the `Auto*` classes, and marks each class for
`register_for_auto_class`, so that `save_pretrained` writes the model code and an `auto_map` beside the weights
(loadable with `trust_remote_code=True` where reformer-ko is not installed). It also makes
`pipeline("question-answering")` available where transformers has removed that task (transformers >= 5.3).
"""

import transformers
from transformers import AutoConfig

from .configuration_reformer_ko import PRESETS, ReformerKoConfig
from .korquad.pipeline import register_question_answering_pipeline
from .modeling_reformer_ko import (
    HEADS,
    ReformerKoForCausalLM,
    ReformerKoForMaskedLM,
    ReformerKoForPreTraining,
    ReformerKoForQuestionAnswering,
    ReformerKoForSequenceClassification,
    ReformerKoForTokenClassification,
    ReformerKoModel,
    ReformerKoPreTrainedModel,
)
from .version import __version__

AutoConfig.register(ReformerKoConfig.model_type, ReformerKoConfig, exist_ok=True)
ReformerKoConfig.register_for_auto_class()
for auto_class_name, model_class in HEADS.items():
    getattr(transformers, auto_class_name).register(ReformerKoConfig, model_class, exist_ok=True)
    model_class.register_for_auto_class(auto_class_name)
register_question_answering_pipeline()

__all__ = [
    "__version__",
    "PRESETS",
    "ReformerKoConfig",
    "ReformerKoPreTrainedModel",
    "ReformerKoModel",
    "ReformerKoForMaskedLM",
    "ReformerKoForCausalLM",
    "ReformerKoForPreTraining",
    "ReformerKoForQuestionAnswering",
    "ReformerKoForSequenceClassification",
    "ReformerKoForTokenClassification",
]
