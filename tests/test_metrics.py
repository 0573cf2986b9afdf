import math

import numpy as np
import pytest

from edgernn import metrics
from edgernn.config import TASKS
from edgernn.metrics import (
    accuracy,
    bio_spans,
    bits_per_char,
    corpus_bleu,
    drop_unit,
    entity_f1,
    exact_match,
    macro_f1,
    mae,
    metric_drop,
    mse,
    perplexity,
    token_accuracy,
)


def _tokens(text):
    return text.split()


def test_registries_cover_every_task_and_metric():
    assert set(metrics.METRICS_BY_TASK) == set(TASKS)
    assert set(metrics.PRIMARY_METRIC) == set(TASKS)
    for task, names in metrics.METRICS_BY_TASK.items():
        assert metrics.PRIMARY_METRIC[task] in names
        assert set(names) <= set(metrics.HIGHER_IS_BETTER)


def test_accuracy():
    assert accuracy([0, 1, 1, 2], [0, 1, 0, 2]) == 0.75


def test_macro_f1_skips_class_absent_from_both_sides():
    # class 0: TP 1, 2 predicted, 2 true -> 0.5; class 1: TP 2, 3 predicted, 2 true -> 0.8;
    # class 2: never predicted -> 0; class 3 appears nowhere and is left out of the mean.
    score = macro_f1([0, 1, 1, 1, 0], [0, 0, 1, 1, 2], num_classes=4)
    assert score == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_macro_f1_counts_class_only_predicted():
    # class 1 is predicted but never true: F1 0, and it still enters the mean.
    assert macro_f1([0, 1], [0, 0], num_classes=2) == pytest.approx((2 / 3 + 0.0) / 2)


def test_bio_spans_stray_i_and_adjacent_entities():
    tags = ["I-PER", "I-PER", "O", "B-PER", "B-PER", "I-LOC", "I-LOC", "B-ORG", "I-PER"]
    assert bio_spans(tags) == {
        (0, 2, "PER"),  # stray I- at the start opens an entity
        (3, 4, "PER"),
        (4, 5, "PER"),  # B-PER B-PER: two adjacent entities
        (5, 7, "LOC"),  # I-LOC after PER opens a new LOC entity
        (7, 8, "ORG"),
        (8, 9, "PER"),  # entity running to the end of the sentence
    }


def test_bio_spans_empty_and_all_outside():
    assert bio_spans([]) == set()
    assert bio_spans(["O", "O"]) == set()


@pytest.mark.parametrize("tag", ["PER", "X-PER", "B-", "E-PER"])
def test_bio_spans_rejects_non_bio_tags(tag):
    with pytest.raises(ValueError, match="not a BIO tag"):
        bio_spans(["O", tag])


def test_entity_f1_partial_match():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-MISC"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    # 4 predicted, 3 gold, 2 exact matches (LOC, MISC): P = 1/2, R = 2/3, F1 = 4/7.
    assert entity_f1(pred, gold) == pytest.approx(4 / 7)


def test_entity_f1_does_not_match_across_sentences():
    assert entity_f1([["O"], ["B-PER"]], [["B-PER"], ["O"]]) == 0.0


def test_entity_f1_no_entities_anywhere_is_zero():
    assert entity_f1([["O", "O"]], [["O", "O"]]) == 0.0


def test_entity_f1_perfect():
    tags = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entity_f1(tags, tags) == 1.0


def test_token_accuracy_uses_gold_length():
    # Sentence 1: 2 of 3 right; sentence 2: prediction one short, the missing position is wrong,
    # and the extra token in sentence 3 is ignored. 2 + 1 + 1 correct out of 3 + 2 + 1.
    pred = [[1, 2, 9], [4], [6, 7]]
    gold = [[1, 2, 3], [4, 5], [6]]
    assert token_accuracy(pred, gold) == pytest.approx(4 / 6)


def test_exact_match():
    assert exact_match([[1, 2], [3], (5,)], [[1, 2], [3, 4], [5]]) == pytest.approx(2 / 3)


def test_corpus_bleu_two_sentence_hand_computed():
    pred = [_tokens("the cat sat on the mat"), _tokens("hello world")]
    refs = [_tokens("the cat sat on a mat"), _tokens("hello there world")]
    # Corpus sums of clipped matches / totals per order:
    # 1-grams 5/6 + 2/2, 2-grams 3/5 + 0/1, 3-grams 2/4 + 0/0, 4-grams 1/3 + 0/0.
    precisions = (7 / 8, 3 / 6, 2 / 4, 1 / 3)
    brevity = math.exp(1 - 9 / 8)  # 8 output tokens, 9 reference tokens
    expected = 100 * brevity * math.prod(precisions) ** (1 / 4)
    assert corpus_bleu(pred, refs) == pytest.approx(expected)
    assert expected == pytest.approx(45.86, abs=0.01)


def test_corpus_bleu_identical_corpus_is_100():
    corpus = [_tokens("a b c d e"), _tokens("f g h i")]
    assert corpus_bleu(corpus, corpus) == pytest.approx(100.0)


def test_corpus_bleu_brevity_penalty():
    ref = [_tokens("the cat sat on the mat")]
    # Every n-gram of the 5-token prefix matches; only the brevity penalty bites.
    assert corpus_bleu([ref[0][:5]], ref) == pytest.approx(100 * math.exp(1 - 6 / 5))


def test_corpus_bleu_longer_output_has_no_brevity_penalty():
    ref = [_tokens("the cat sat on the mat")]
    pred = [_tokens("the cat sat on the mat today")]
    assert corpus_bleu(pred, ref) == pytest.approx(100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25)


def test_corpus_bleu_zero_matches_and_empty_outputs_are_zero():
    refs = [_tokens("a b c d"), _tokens("e f g h")]
    assert corpus_bleu([_tokens("w x y z"), _tokens("q r s t")], refs) == 0.0
    assert corpus_bleu([[], []], refs) == 0.0
    # Unsmoothed: no matching 4-gram anywhere gives 0 even with good unigrams.
    assert corpus_bleu([_tokens("a b c x"), _tokens("e f g y")], refs) == 0.0


def test_corpus_bleu_max_n_two():
    pred = [_tokens("a b c")]
    refs = [_tokens("a b d")]
    assert corpus_bleu(pred, refs, max_n=2) == pytest.approx(100 * math.sqrt(2 / 3 * 1 / 2))


@pytest.mark.parametrize("vocab", [2, 50, 256])
def test_perplexity_and_bpc_of_uniform_distribution(vocab):
    count = 7
    total_nll = count * math.log(vocab)
    assert perplexity(total_nll, count) == pytest.approx(vocab)
    assert bits_per_char(total_nll, count) == pytest.approx(math.log2(vocab))


def test_perplexity_overflow_is_inf():
    assert perplexity(1e6, 1) == math.inf


def test_mse_and_mae():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [6.0, 4.0]])
    assert mse(pred, target) == pytest.approx((0 + 4 + 9 + 0) / 4)
    assert mae(pred, target) == pytest.approx((0 + 2 + 3 + 0) / 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: accuracy([0, 1], [0]),
        lambda: macro_f1([0], [0, 1], num_classes=2),
        lambda: entity_f1([["O"]], [["O"], ["O"]]),
        lambda: token_accuracy([[1]], [[1], [2]]),
        lambda: exact_match([[1], [2]], [[1]]),
        lambda: corpus_bleu([["a"]], [["a"], ["b"]]),
    ],
)
def test_mismatched_lengths_raise(call):
    with pytest.raises(ValueError, match="one prediction per reference"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: accuracy([], []),
        lambda: macro_f1([], [], num_classes=2),
        lambda: entity_f1([], []),
        lambda: token_accuracy([], []),
        lambda: exact_match([], []),
        lambda: corpus_bleu([], []),
        lambda: mse(np.array([]), np.array([])),
        lambda: mae(np.zeros((0, 3)), np.zeros((0, 3))),
    ],
)
def test_empty_inputs_raise(call):
    with pytest.raises(ValueError, match="empty"):
        call()


def test_other_invalid_inputs_raise():
    with pytest.raises(ValueError, match="aligned per token"):
        entity_f1([["O"]], [["O", "B-PER"]])
    with pytest.raises(ValueError, match="gold sequence is empty"):
        token_accuracy([[1]], [[]])
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        macro_f1([0, 3], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="token lists"):
        corpus_bleu(["the cat"], ["the cat"])
    with pytest.raises(ValueError, match="max_n"):
        corpus_bleu([["a"]], [["a"]], max_n=0)
    with pytest.raises(ValueError, match="shapes differ"):
        mse(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="count"):
        perplexity(1.0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        bits_per_char(-1.0, 2)


def test_metric_drop_is_points_or_percent_relative():
    assert metric_drop(99.0, 98.5, "accuracy") == pytest.approx(0.5)
    assert metric_drop(2.0, 2.04, "perplexity") == pytest.approx(2.0)
    assert metric_drop(0.01, 0.009, "mse") == pytest.approx(-10.0)  # better: a negative drop
    assert (drop_unit("accuracy"), drop_unit("mse")) == ("points", "% relative")


def test_a_tag_set_with_crf_markers_scores_them_as_no_entity_and_wrong():
    import torch

    from edgernn.data.batching import Batch
    from edgernn.data.meta import DataMeta
    from edgernn.tasks import TASKS as TASK_OBJECTS

    labels = ["O", "B-PER", "I-PER", "<START>", "<STOP>"]  # PyTorch's BiLSTM-CRF tag_to_ix
    choices = torch.tensor([[1, 2, 4, 0]])  # B-PER I-PER <STOP> O

    class Fixed(torch.nn.Module):
        def forward(self, inputs, lengths):
            return torch.nn.functional.one_hot(choices, len(labels)).float()

    gold = torch.tensor([[1, 2, 0, 0]])
    batch = Batch(torch.ones(1, 4, dtype=torch.long), torch.tensor([4]), gold)
    scores = TASK_OBJECTS["tag"].evaluate(Fixed(), [batch], DataMeta("tag", labels=labels))
    assert scores["entity_f1"] == 100.0  # the PER span is found; <STOP> opens no entity
    assert scores["token_accuracy"] == 75.0  # but <STOP> is not the gold O
