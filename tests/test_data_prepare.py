import numpy as np
import pytest
import torch

from edgernn.data import RawData, encode, fit_meta, iterate_batches, load_raw
from edgernn.data.batching import IGNORE_INDEX, batch_indices
from edgernn.data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK_ID, Vocab
from edgernn.errors import EdgeRNNError


def _text_raw(train, test=None):
    return RawData("classify", train=train, valid=train[:1], test=test or train[:1])


def test_vocab_reserves_specials_and_maps_unknown():
    vocab = Vocab.build([["b", "a", "b"], ["c"]])
    assert vocab.itos[:4] == list(SPECIALS) and vocab.itos[4] == "b"
    assert vocab.encode(["b", "zzz"]) == [4, UNK_ID]
    assert vocab.decode([BOS_ID, 4, 5, EOS_ID, 4]) == ["b", "a"]


def test_vocab_and_labels_come_from_train_only():
    raw = _text_raw([("good film", "pos"), ("bad film", "neg")], test=[("unseen words", "pos")])
    meta = fit_meta(raw, "word")
    assert "unseen" not in meta.vocab and meta.labels == ["neg", "pos"]
    data = encode(raw, meta, max_len=10)
    assert data.splits["test"][0][0].tolist() == [UNK_ID, UNK_ID]


def test_label_missing_from_train_is_an_error():
    raw = _text_raw([("good film", "pos"), ("bad film", "neg")], test=[("film", "meh")])
    with pytest.raises(EdgeRNNError, match="'meh'.*never occurs in the training data"):
        encode(raw, fit_meta(raw, "word"), max_len=10)


def test_sequence_longer_than_max_len_is_an_error():
    raw = _text_raw([("a b c d e", "x"), ("a", "y")])
    with pytest.raises(EdgeRNNError, match="5 steps, more than the model's max length 4"):
        encode(raw, fit_meta(raw, "word"), max_len=4)


def test_char_and_word_tokens():
    raw = _text_raw([("ab ba", "x"), ("a", "y")])
    assert len(fit_meta(raw, "char").vocab) == 4 + 3
    assert len(fit_meta(raw, "word").vocab) == 4 + 3


def test_numeric_normalization_uses_train_statistics(regress_npz):
    raw = load_raw(str(regress_npz), "regress")
    meta = fit_meta(raw)
    data = encode(raw, meta, max_len=64)
    steps = torch.cat([x for x, _ in data.splits["train"]])
    assert torch.allclose(steps.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(steps.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    targets = torch.stack([y for _, y in data.splits["train"]])
    assert abs(float(targets.mean())) < 1e-5
    valid_steps = np.concatenate([x for x, _ in raw.valid])
    expected = (valid_steps - np.array(meta.norm["x_mean"])) / np.array(meta.norm["x_std"])
    got = torch.cat([x for x, _ in data.splits["valid"]]).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def test_lm_windows_shift_targets_by_one(lm_txt):
    raw = load_raw(str(lm_txt), "lm")
    data = encode(raw, fit_meta(raw), max_len=16)
    (x0, y0), (x1, _) = data.splits["train"][:2]
    assert len(x0) == 16 and torch.equal(x0[1:], y0[:-1]) and y0[-1] == x1[0]


def test_seq2seq_targets_are_framed(seq2seq_tsv):
    raw = load_raw(str(seq2seq_tsv), "seq2seq")
    source, target = encode(raw, fit_meta(raw), max_len=16).splits["train"][0]
    assert target[0] == BOS_ID and target[-1] == EOS_ID and len(target) == len(source) + 2


def test_collate_pads_and_masks_targets(tag_conll, seq2seq_tsv):
    raw = load_raw(str(tag_conll), "tag")
    data = encode(raw, fit_meta(raw), max_len=16)
    batch = next(iterate_batches(data.splits["train"], "tag", 8, torch.Generator().manual_seed(0)))
    for row, length in zip(batch.targets, batch.lengths.tolist(), strict=True):
        assert (row[length:] == IGNORE_INDEX).all() and (row[:length] >= 0).all()
    raw = load_raw(str(seq2seq_tsv), "seq2seq")
    data = encode(raw, fit_meta(raw), max_len=16)
    batch = next(iterate_batches(data.splits["train"], "seq2seq", 8))
    assert (batch.decoder_inputs[:, 0] == BOS_ID).all()
    assert batch.decoder_inputs.shape == batch.targets.shape
    assert (
        (batch.decoder_inputs[:, 1:] == PAD_ID) == (batch.targets[:, :-1] == IGNORE_INDEX)
    ).all()


def test_bucketing_covers_every_example_once_and_is_seeded():
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 6, 4] * 7
    first = batch_indices(lengths, 4, torch.Generator().manual_seed(1))
    again = batch_indices(lengths, 4, torch.Generator().manual_seed(1))
    other = batch_indices(lengths, 4, torch.Generator().manual_seed(2))
    assert first == again and first != other
    assert sorted(i for batch in first for i in batch) == list(range(len(lengths)))
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first)
    assert spread <= 1  # one pool holds everything here, so batches are near-uniform


def _npz(path, features=2, targets=1, classify=False):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(10, targets)) if targets > 1 else rng.normal(size=10)
    y = (y > 0).astype(np.int64) if classify else y
    np.savez(path, x=rng.normal(size=(10, 4, features)), lengths=np.full(10, 3), y=y)


@pytest.mark.parametrize(
    "task, valid, message",
    [
        ("classify", "valid.csv", "valid split holds text but the model takes numeric"),
        ("regress", "features", "valid split has 3 features per step but the model takes 2"),
        ("regress", "targets", "valid split has 3 regression targets .* model predicts 1"),
    ],
)
def test_splits_that_disagree_with_train_are_refused(tmp_path, task, valid, message):
    _npz(tmp_path / "train.npz", classify=task == "classify")
    if valid == "valid.csv":
        (tmp_path / "valid.csv").write_text("text,label\ngood,1\n", encoding="utf-8")
    else:
        _npz(tmp_path / "valid.npz", *((3, 1) if valid == "features" else (2, 3)))
    raw = load_raw(str(tmp_path), task)
    with pytest.raises(EdgeRNNError, match=f"{tmp_path}: the {message}"):
        encode(raw, fit_meta(raw), max_len=10)


def test_text_split_after_numeric_train_is_refused(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\nc,x\n", encoding="utf-8")
    _npz(tmp_path / "valid.npz", classify=True)
    raw = load_raw(str(tmp_path), "classify")
    with pytest.raises(EdgeRNNError, match="valid split holds numeric sequences but the model"):
        encode(raw, fit_meta(raw), max_len=10)


def test_encoding_errors_name_the_data_and_quote_the_example(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a b c d e f g h i j k l m n o p q r s t" + " " * 10, encoding="utf-8")
    raw = load_raw(str(path), "lm")
    with pytest.raises(EdgeRNNError, match=f"{path}: the valid text is too short: .* 2 word"):
        encode(raw, fit_meta(raw, "word"), max_len=10)
    raw = _text_raw([("a b c d e", "x"), ("a", "y")])
    raw.source = "reviews.csv"
    with pytest.raises(EdgeRNNError, match=r"reviews.csv: train example 0 \('a b c d e'...\)"):
        encode(raw, fit_meta(raw, "word"), max_len=4)
