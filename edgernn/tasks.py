"""Per task: the training loss and the evaluation metrics, in a plain registry.

Scores that are fractions (accuracy, F1, exact match, BLEU) are reported in percent, so a
"point" is one percentage point everywhere; errors (MSE, MAE) are in the data's own units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgernn import metrics
from edgernn.data.batching import IGNORE_INDEX, Batch
from edgernn.data.meta import DataMeta, denormalize_y
from edgernn.data.vocab import Vocab


def _percent(value: float) -> float:
    return 100.0 * value


class Task:
    """Loss and metrics of one task; subclasses register themselves in ``TASKS``."""

    name: str

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        logits = self.forward(model, batch)
        return F.cross_entropy(
            logits.flatten(0, -2), batch.targets.flatten(), ignore_index=IGNORE_INDEX
        )

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch.inputs, batch.lengths)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch], meta: DataMeta) -> dict:
        raise NotImplementedError


class Classify(Task):
    name = "classify"

    @torch.no_grad()
    def evaluate(self, model, batches, meta):
        predicted, gold = [], []
        for batch in batches:
            predicted += self.forward(model, batch).argmax(-1).tolist()
            gold += batch.targets.tolist()
        return {
            "accuracy": _percent(metrics.accuracy(predicted, gold)),
            "macro_f1": _percent(metrics.macro_f1(predicted, gold, len(meta.labels))),
        }


class Regress(Task):
    name = "regress"

    def loss(self, model, batch):
        return F.mse_loss(self.forward(model, batch), batch.targets)

    @torch.no_grad()
    def evaluate(self, model, batches, meta):
        predicted, gold = [], []
        for batch in batches:
            predicted.append(self.forward(model, batch).float().cpu().numpy())
            gold.append(batch.targets.cpu().numpy())
        predicted = denormalize_y(np.concatenate(predicted), meta.norm)
        gold = denormalize_y(np.concatenate(gold), meta.norm)
        return {"mse": metrics.mse(predicted, gold), "mae": metrics.mae(predicted, gold)}


class Tag(Task):
    name = "tag"

    @torch.no_grad()
    def evaluate(self, model, batches, meta):
        predicted, gold = [], []
        for batch in batches:
            best = self.forward(model, batch).argmax(-1).tolist()
            rows = zip(best, batch.targets.tolist(), batch.lengths.tolist(), strict=True)
            for row, target, length in rows:
                predicted.append([meta.labels[i] for i in row[:length]])
                gold.append([meta.labels[i] for i in target[:length]])
        # A user's tag set may name tags no sentence has (a CRF's <START> and <STOP>): a
        # model choosing one there tags no entity, as seqeval reads it (and is wrong there).
        spans = [[tag if metrics.is_bio_tag(tag) else "O" for tag in row] for row in predicted]
        return {
            "entity_f1": _percent(metrics.entity_f1(spans, gold)),
            "token_accuracy": _percent(metrics.token_accuracy(predicted, gold)),
        }


class LanguageModel(Task):
    name = "lm"

    @torch.no_grad()
    def evaluate(self, model, batches, meta):
        total_nll, count = 0.0, 0
        for batch in batches:
            logits = self.forward(model, batch)
            total_nll += F.cross_entropy(
                logits.flatten(0, -2).float(),
                batch.targets.flatten(),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            ).item()
            count += int((batch.targets != IGNORE_INDEX).sum())
        scores = {"perplexity": metrics.perplexity(total_nll, count)}
        if meta.tokens == "char":
            scores["bits_per_char"] = metrics.bits_per_char(total_nll, count)
        return scores


class Seq2Seq(Task):
    name = "seq2seq"

    def forward(self, model, batch):
        return model(batch.inputs, batch.lengths, batch.decoder_inputs)

    @torch.no_grad()
    def evaluate(self, model, batches, meta):
        target_vocab = Vocab(meta.tgt_vocab)
        predicted, gold = [], []
        for batch in batches:
            # max_len None: each row's own limit (edgernn.runtime.search.decode_limits), so a
            # row's score does not depend on its batch mates.
            outputs = model.greedy(batch.inputs, batch.lengths, max_len=None)
            predicted += [target_vocab.decode(ids) for ids in outputs]
            gold += [target_vocab.decode(row.clamp(min=0).tolist()) for row in batch.targets]
        return {
            "exact_match": _percent(metrics.exact_match(predicted, gold)),
            "token_accuracy": _percent(metrics.token_accuracy(predicted, gold)),
            "bleu": metrics.corpus_bleu(predicted, gold),
        }


TASKS: dict[str, Task] = {
    task.name: task for task in (Classify(), Regress(), Tag(), LanguageModel(), Seq2Seq())
}


def primary_metric(task: str) -> tuple[str, bool]:
    """The metric early stopping and reports rank by, and whether higher is better."""
    name = metrics.PRIMARY_METRIC[task]
    return name, metrics.HIGHER_IS_BETTER[name]


def is_better(new: float, old: float, higher_is_better: bool) -> bool:
    if math.isnan(new):
        return False
    return new > old if higher_is_better else new < old
