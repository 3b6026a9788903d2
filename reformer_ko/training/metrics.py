"""Evaluation metrics of the pretraining tasks, computed from what the Trainer gathers over the eval set."""

import math

import torch


def predicted_ids(logits, labels):
    """The argmax ids in the labels' shape. A masked LM called with `sparse_prediction=True` (by reformer-ko's
    trainer, for a config with `sparse_prediction`) returns logits only at the labelled positions: their ids go back
    to those positions (-100 elsewhere), so that every process's predictions keep one row per sequence (the Trainer
    drops repeated sequences of the last batch row by row)."""
    ids = logits.argmax(dim=-1)
    if labels is None or ids.dim() == labels.dim():
        return ids
    labelled = labels != -100
    if ids.numel() != (count := int(labelled.sum())):
        raise ValueError(
            f"Got predictions for {ids.numel()} positions but {count} labelled positions: sparse "
            "logits must hold exactly the positions where labels != -100, in order."
        )
    return torch.full_like(labels, -100).masked_scatter(labelled, ids)


def argmax_logits(logits, labels):
    """Keep only the predicted ids (the Trainer would otherwise gather every logit of the eval set)."""
    return predicted_ids(logits[0] if isinstance(logits, tuple) else logits, labels)


def masked_lm_metrics(eval_prediction):
    """Accuracy of the predicted tokens at the masked positions."""
    predictions, labels = eval_prediction.predictions, eval_prediction.label_ids
    masked = labels != -100
    return {"masked_token_accuracy": float((predictions[masked] == labels[masked]).mean())}


def causal_lm_metrics(eval_prediction):
    """Accuracy of the next-token predictions (each position predicts the label one step later)."""
    predictions, labels = eval_prediction.predictions[:, :-1], eval_prediction.label_ids[:, 1:]
    scored = labels != -100
    return {"next_token_accuracy": float((predictions[scored] == labels[scored]).mean())}


def electra_eval_outputs(outputs, labels):
    """From `ElectraPretrainingOutput` (as a tuple without the loss): the generator's predicted ids, the
    discriminator's logits and labels, and both losses repeated per sequence (so they average over sequences)."""
    generator_loss, discriminator_loss, generator_logits, discriminator_logits, discriminator_labels = outputs
    batch_size = discriminator_logits.shape[0]
    return (
        predicted_ids(generator_logits, labels),
        discriminator_logits,
        discriminator_labels,
        generator_loss.expand(batch_size),
        discriminator_loss.expand(batch_size),
    )


def electra_metrics(eval_prediction):
    """Generator accuracy at masked positions; discriminator accuracy over all tokens, and its precision, recall
    and F1 at detecting replaced tokens."""
    generator_ids, discriminator_logits, discriminator_labels, generator_loss, discriminator_loss = (
        eval_prediction.predictions
    )
    mlm_labels = eval_prediction.label_ids
    masked = mlm_labels != -100
    scored = discriminator_labels != -100
    replaced = discriminator_labels[scored] == 1
    predicted = discriminator_logits[scored] > 0
    true_positives = float((predicted & replaced).sum())
    precision = true_positives / max(float(predicted.sum()), 1.0)
    recall = true_positives / max(float(replaced.sum()), 1.0)
    return {
        "generator_loss": float(generator_loss.mean()),
        "discriminator_loss": float(discriminator_loss.mean()),
        "generator_accuracy": float((generator_ids[masked] == mlm_labels[masked]).mean()),
        "discriminator_accuracy": float((predicted == replaced).mean()),
        "replaced_token_precision": precision,
        "replaced_token_recall": recall,
        "replaced_token_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "replaced_token_fraction": float(replaced.mean()),
    }


def perplexity(loss):
    """exp(loss), or infinity where that overflows."""
    return math.exp(loss) if loss < 700 else float("inf")
