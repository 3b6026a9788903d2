"""ELECTRA pretraining (replaced-token detection) with reformer-ko models.

`ElectraPretrainingModel` holds a small masked-LM generator and the discriminator (`ReformerKoForPreTraining`),
which share their token, segment and position embeddings. Each step the generator fills the masked positions
with tokens sampled from its own predictions, and the discriminator learns which tokens of the result were
replaced. It saves as two standalone checkpoints: the discriminator in the directory itself (what fine-tuning
loads, e.g. with `AutoModelForQuestionAnswering`) and the generator, a `ReformerKoForMaskedLM`, in `generator/`.
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import PreTrainedModel
from transformers.utils import ModelOutput, logging

from .configuration_reformer_ko import ReformerKoConfig
from .modeling_reformer_ko import ReformerKoForMaskedLM, ReformerKoForPreTraining

logger = logging.get_logger(__name__)

GENERATOR_DIR = "generator"
# KoELECTRA-Base's generator is a third of the discriminator's width (256 vs 768), as the ELECTRA paper advises.
DEFAULT_GENERATOR_SIZE_RATIO = 1 / 3
DEFAULT_DISCRIMINATOR_LOSS_WEIGHT = 50.0


def generator_config(
    discriminator_config: ReformerKoConfig, size_ratio=DEFAULT_GENERATOR_SIZE_RATIO
) -> ReformerKoConfig:
    """The config of a generator `size_ratio` as wide as the discriminator: same depth, head size and embeddings."""
    if not 0 < size_ratio <= 1:
        raise ValueError(f"generator size ratio must be in (0, 1], got {size_ratio}")
    head_size = discriminator_config.hidden_size // discriminator_config.num_attention_heads
    num_heads = max(1, round(discriminator_config.num_attention_heads * size_ratio))
    fields = discriminator_config.to_dict()
    for name in ("architectures", "auto_map", "transformers_version", "_name_or_path"):
        fields.pop(name, None)
    fields.update(
        hidden_size=num_heads * head_size,
        num_attention_heads=num_heads,
        # The embeddings are the discriminator's, so their width is too; the generator projects them to its width.
        embedding_size=discriminator_config.embedding_size,
        is_decoder=False,
        # Only the masked positions are sampled and scored: the LM head runs there alone.
        sparse_prediction=True,
    )
    return ReformerKoConfig(**fields)


def share_embeddings(generator: ReformerKoForMaskedLM, discriminator: ReformerKoForPreTraining):
    """Make the generator use the discriminator's token, segment and position embeddings (and tie its output layer)."""
    if generator.config.embedding_size != discriminator.config.embedding_size:
        raise ValueError(
            f"generator and discriminator must have the same embedding_size to share embeddings, got "
            f"{generator.config.embedding_size} and {discriminator.config.embedding_size}"
        )
    generator.reformer.embeddings = discriminator.reformer.embeddings
    generator.lm_head.decoder.weight = discriminator.reformer.embeddings.word_embeddings.weight


@torch.no_grad()
def sample_tokens(logits, temperature=1.0):
    """One token id per row of `logits` (..., vocab), drawn from softmax(logits / temperature)."""
    probabilities = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probabilities.reshape(-1, probabilities.shape[-1]), 1).reshape(logits.shape[:-1])


@dataclass
class ElectraPretrainingOutput(ModelOutput):
    """Output of `ElectraPretrainingModel`: `loss` = generator loss + weight × discriminator loss; the logits of
    both models (the generator's at the masked positions only, (masked tokens, vocab), when it has
    `sparse_prediction`, as generators made here do); `discriminator_labels`, 1 where the discriminator's input
    differs from the original text, 0 where it does not, -100 on padding."""

    loss: torch.Tensor | None = None
    generator_loss: torch.Tensor | None = None
    discriminator_loss: torch.Tensor | None = None
    generator_logits: torch.Tensor | None = None
    discriminator_logits: torch.Tensor | None = None
    discriminator_labels: torch.Tensor | None = None


class ElectraPretrainingModel(PreTrainedModel):
    """ELECTRA replaced-token detection over a masked-LM batch (`input_ids` with masks, `labels` -100 where not
    masked, as `reformer_ko.data.mlm_collator` makes them).

    The generator's samples (temperature 1, no gradient through the sampling) replace the masked tokens; a sample
    equal to the original token counts as original. `config` is the discriminator's.
    """

    config_class = ReformerKoConfig
    main_input_name = "input_ids"
    supports_gradient_checkpointing = False
    # forward takes no **kwargs: the Trainer must not scale the loss by `num_items_in_batch`.
    accepts_loss_kwargs = False

    def __init__(
        self,
        config: ReformerKoConfig,
        *,
        generator_size_ratio=DEFAULT_GENERATOR_SIZE_RATIO,
        discriminator_loss_weight=DEFAULT_DISCRIMINATOR_LOSS_WEIGHT,
        discriminator: ReformerKoForPreTraining | None = None,
        generator: ReformerKoForMaskedLM | None = None,
    ):
        super().__init__(config)
        self.discriminator = discriminator if discriminator is not None else ReformerKoForPreTraining(config)
        self.generator = (
            generator
            if generator is not None
            else ReformerKoForMaskedLM(generator_config(config, generator_size_ratio))
        )
        share_embeddings(self.generator, self.discriminator)
        self.discriminator_loss_weight = discriminator_loss_weight
        self.post_init()

    def get_input_embeddings(self):
        return self.discriminator.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, return_dict=None):
        if labels is None:
            raise ValueError(
                "ELECTRA pretraining needs masked-LM `labels` (the original ids at masked positions, -100 elsewhere), "
                "e.g. from reformer_ko.data.mlm_collator."
            )
        generator_output = self.generator(
            input_ids,
            attention_mask,
            token_type_ids,
            labels=labels,
            return_dict=True,
            sparse_prediction=self.generator.config.sparse_prediction,
        )
        masked = labels != -100
        original_ids = torch.where(masked, labels, input_ids)
        generator_logits = generator_output.logits
        if generator_logits.shape[:-1] == masked.shape:  # a generator without sparse_prediction
            generator_logits = generator_logits[masked]
        corrupted_ids = original_ids.masked_scatter(masked, sample_tokens(generator_logits))
        discriminator_labels = (corrupted_ids != original_ids).long()
        if attention_mask is not None:
            discriminator_labels = discriminator_labels.masked_fill(attention_mask == 0, -100)
        discriminator_output = self.discriminator(
            corrupted_ids, attention_mask, token_type_ids, labels=discriminator_labels, return_dict=True
        )
        loss = generator_output.loss + self.discriminator_loss_weight * discriminator_output.loss
        output = ElectraPretrainingOutput(
            loss=loss,
            generator_loss=generator_output.loss.detach(),
            discriminator_loss=discriminator_output.loss.detach(),
            generator_logits=generator_output.logits,
            discriminator_logits=discriminator_output.logits,
            discriminator_labels=discriminator_labels,
        )
        return output if (return_dict if return_dict is not None else self.config.return_dict) else output.to_tuple()

    def save_pretrained(self, save_directory, state_dict=None, **kwargs):
        """Save the discriminator as a standalone checkpoint in `save_directory` and the generator in
        `save_directory/generator`. A `state_dict` of this model (e.g. gathered by the Trainer under DeepSpeed or
        FSDP) is split between the two."""
        save_directory = Path(save_directory)
        parts = {"discriminator": save_directory, "generator": save_directory / GENERATOR_DIR}
        for name, directory in parts.items():
            part_state_dict = None
            if state_dict is not None:
                prefix = f"{name}."
                part_state_dict = {
                    key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)
                }
            getattr(self, name).save_pretrained(directory, state_dict=part_state_dict, **kwargs)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path,
        *,
        generator_size_ratio=DEFAULT_GENERATOR_SIZE_RATIO,
        discriminator_loss_weight=DEFAULT_DISCRIMINATOR_LOSS_WEIGHT,
        **kwargs,
    ):
        """Load a saved ELECTRA model to continue pretraining: the discriminator from the directory and the generator
        from its `generator/` folder (a new generator of `generator_size_ratio` if there is none)."""
        discriminator = ReformerKoForPreTraining.from_pretrained(pretrained_model_name_or_path, **kwargs)
        try:
            generator = ReformerKoForMaskedLM.from_pretrained(
                pretrained_model_name_or_path, subfolder=GENERATOR_DIR, **kwargs
            )
        except OSError:
            logger.warning(f"{pretrained_model_name_or_path} has no {GENERATOR_DIR}/ folder: starting a new generator.")
            generator = None
        return cls(
            discriminator.config,
            generator_size_ratio=generator_size_ratio,
            discriminator_loss_weight=discriminator_loss_weight,
            discriminator=discriminator,
            generator=generator,
        )

    def load_saved_weights(self, directory):
        """Load the weights that `save_pretrained` wrote to `directory` into this model (to resume training)."""
        directory = Path(directory)
        load_weights_strictly(self.discriminator, directory)
        load_weights_strictly(self.generator, directory / GENERATOR_DIR)


def load_weights_strictly(model: PreTrainedModel, directory: Path):
    """Load `directory/model.safetensors` into `model`; every tensor of the model must be restored (tensors that are
    stored once for several names, like tied or shared weights, count as restored through any of their names)."""
    state_dict = load_file(directory / "model.safetensors")
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    tensors = model.state_dict(keep_vars=True)
    restored = {id(tensors[name]) for name in state_dict if name in tensors}
    not_restored = [name for name in missing if id(tensors[name]) not in restored]
    if not_restored or unexpected:
        raise ValueError(
            f"{directory} does not hold the weights of this {type(model).__name__}: missing {not_restored[:5]}, "
            f"unexpected {unexpected[:5]}."
        )


__all__ = [
    "DEFAULT_DISCRIMINATOR_LOSS_WEIGHT",
    "DEFAULT_GENERATOR_SIZE_RATIO",
    "ElectraPretrainingModel",
    "ElectraPretrainingOutput",
    "generator_config",
    "sample_tokens",
    "share_embeddings",
]
