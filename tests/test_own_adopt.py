"""Adoption: a user's module rebuilt as an edgernn model, equal by parity, or refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from own_models import CharLM, LSTMTagger, RNNRegressor, SentimentLSTM
from torch import nn

from edgernn.own.adopt import PARITY, NotAdoptable, adopt
from edgernn.own.load import OwnModel, flatten_outputs, run_forward

RNG = np.random.default_rng(0)
VOCAB = {"<unk>": 0, **{f"w{i}": i for i in range(1, 40)}}  # unknown id 0, no <bos>/<eos>


def _own(module: nn.Module, **inputs) -> OwnModel:
    torch.manual_seed(0)
    return OwnModel(module.eval(), inputs, "mine.pt")


CASES = {
    "rnn_regressor": (
        lambda: _own(RNNRegressor(), x=RNG.standard_normal((4, 10, 1), "float32")),
        "regress",
        None,
    ),
    "char_lm": (lambda: _own(CharLM(layers=2), x=RNG.integers(0, 20, (3, 7))), "lm", None),
    "tagger": (lambda: _own(LSTMTagger(), sentence=RNG.integers(0, 30, (9,))), "tag", None),
    "sentiment": (
        lambda: _own(SentimentLSTM(), text=RNG.integers(0, 40, (4, 9))),
        "classify",
        VOCAB,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_tutorial_models_are_adopted_with_parity(case):
    make, task, vocab = CASES[case]
    own = make()
    adopted = adopt(own, vocab=vocab)
    assert adopted.checkpoint.spec.task == task  # inferred from the outputs
    assert adopted.parity <= PARITY and adopted.fresh_parity is not None
    assert adopted.fresh_parity <= PARITY
    # Independently of adopt's own comparison: the rebuilt checkpoint on the example.
    model = adopted.checkpoint.build().eval()
    (name, x), *_ = own.inputs.items()
    ids = torch.from_numpy(adopted.tokens.lookup()[x]) if adopted.tokens else torch.from_numpy(x)
    ids = ids.reshape(-1, 1).T if task == "tag" else ids  # the tagger's one unbatched sentence
    got = model(ids, torch.full((ids.shape[0],), ids.shape[1]))
    (_, expected), *_ = flatten_outputs(run_forward(own.module, own.inputs))
    if task == "lm":
        got = got[..., torch.from_numpy(adopted.tokens.lookup())]
    if task == "tag":
        got = got.log_softmax(-1)
    assert torch.allclose(got.reshape(expected.shape), expected, atol=PARITY)


def test_a_vocabulary_with_unknown_id_zero_keeps_its_words():
    own = CASES["sentiment"][0]()
    adopted = adopt(own, vocab=VOCAB)
    vocab = adopted.checkpoint.meta.vocab
    assert vocab[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert sorted(vocab[4:]) == sorted(f"w{i}" for i in range(1, 40))
    # The user's "w7" is the same embedding row under its new id.
    user_row = own.module.embedding.weight[7]
    assert torch.equal(
        adopted.checkpoint.state_dict["encoder.embedding.weight"][vocab.index("w7")], user_row
    )
    assert torch.equal(
        adopted.checkpoint.state_dict["encoder.embedding.weight"][1], own.module.embedding.weight[0]
    )  # the user's <unk> row


@pytest.mark.parametrize("lengths", [np.array([6, 3, 2, 5]), np.array([6, 6, 6, 6])])
def test_padded_batches_match_a_model_that_packs(lengths):
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(10, 4)
            self.gru = nn.GRU(4, 8, batch_first=True, num_layers=2)
            self.fc = nn.Linear(8, 3)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(
                self.embedding(x), lengths, batch_first=True, enforce_sorted=False
            )
            _, hidden = self.gru(packed)
            return self.fc(hidden[-1])

    adopted = adopt(_own(Packed(), x=RNG.integers(0, 10, (4, 6)), lengths=lengths))
    assert adopted.checkpoint.spec.pooling == "last"
    assert adopted.fresh_parity is not None and adopted.fresh_parity <= PARITY


def test_an_input_projection_is_folded_into_the_first_layer():
    class Projected(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(3, 5)
            self.rnn = nn.LSTM(5, 8, bidirectional=True)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):  # time-major inside, batch-first outside
            out, _ = self.rnn(
                torch.relu(self.inp(x)).transpose(0, 1) * 0 + self.inp(x).transpose(0, 1)
            )
            return self.fc(out.mean(0))

    adopted = adopt(_own(Projected(), x=RNG.standard_normal((4, 6, 3), "float32")))
    assert adopted.checkpoint.spec.input_size == 3 and adopted.checkpoint.spec.pooling == "mean"


def test_stacked_modules_become_one_stack():
    class Stacked(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.GRU(2, 8, batch_first=True)
            self.second = nn.GRU(8, 8, batch_first=True)
            self.fc = nn.Linear(8, 1)

        def forward(self, x):
            out, _ = self.first(x)
            out, _ = self.second(nn.functional.dropout(out, 0.2, self.training))
            return self.fc(out[:, -1]).squeeze(-1)

    adopted = adopt(_own(Stacked(), x=RNG.standard_normal((5, 7, 2), "float32")))
    assert adopted.checkpoint.spec.layers == 2 and adopted.checkpoint.spec.task == "regress"


def test_a_sigmoid_binary_classifier_becomes_two_classes():
    class Binary(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(12, 4)
            self.rnn = nn.LSTM(4, 8, batch_first=True)
            self.fc = nn.Linear(8, 1)

        def forward(self, x):
            _, (h, _) = self.rnn(self.embedding(x))
            return torch.sigmoid(self.fc(h[-1]))

    own = _own(Binary(), x=RNG.integers(0, 12, (4, 5)))
    adopted = adopt(own, task="classify")
    model = adopted.checkpoint.build().eval()
    ids = torch.from_numpy(adopted.tokens.lookup()[own.inputs["x"]])
    probs = model(ids, torch.full((4,), 5)).softmax(-1)[:, 1]
    (_, expected), *_ = flatten_outputs(run_forward(own.module, own.inputs))
    assert torch.allclose(probs, expected[:, 0], atol=PARITY)


@pytest.mark.parametrize(
    "forward, reason",
    [
        (lambda self, x: self.fc(self.rnn(x)[0][:, -1]), "none of the readings"),  # bi out[:, -1]
        (lambda self, x: self.fc(self.rnn(x)[0].sum(1)), "none of the readings"),
    ],
)
def test_a_reading_edgernn_lacks_is_refused_with_the_closest(forward, reason):
    class Mine(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 8, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(16, 2)

    Mine.forward = forward
    with pytest.raises(NotAdoptable, match=reason):
        adopt(_own(Mine(), x=RNG.standard_normal((4, 6, 3), "float32")))


def test_layers_edgernn_lacks_are_named():
    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 4, 3, padding=1)
            self.rnn = nn.GRU(4, 8, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(self.rnn(self.conv(x.transpose(1, 2)).transpose(1, 2))[1][-1])

    with pytest.raises(NotAdoptable, match="Conv1d"):
        adopt(_own(Conv(), x=RNG.standard_normal((2, 5, 3), "float32")))

    class MLPHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 8, batch_first=True)
            self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(self.rnn(x)[1][-1])))

    with pytest.raises(NotAdoptable, match="one nn.Linear"):
        adopt(_own(MLPHead(), x=RNG.standard_normal((2, 5, 3), "float32")))


def test_a_forward_that_only_matches_at_the_example_size_is_refused():
    class FixedStep(nn.Module):  # reads step 4: the last step only when the example has 5
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(2, 8, batch_first=True)
            self.fc = nn.Linear(8, 1)

        def forward(self, x):
            return self.fc(self.rnn(x)[0][:, 4])

    with pytest.raises(NotAdoptable, match="depends on the example's shape"):
        adopt(_own(FixedStep(), x=RNG.standard_normal((3, 5, 2), "float32")))


@pytest.mark.parametrize(
    "vocab", [["<unk>", "a", "b"], {"<unk>": 0, "a": 1, "b": 2}, {0: "<unk>", 1: "a", 2: "b"}]
)
def test_a_vocabulary_by_token_or_by_id_gives_the_same_layout(vocab):
    from edgernn.own.vocab import token_map

    mapping = token_map(vocab, 3, None)
    assert mapping.vocab == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    assert mapping.source_ids == [None, 0, None, None, 1, 2]
