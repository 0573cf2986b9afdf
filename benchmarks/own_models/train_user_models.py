"""Train four tutorial-style models the way a user would, and save them the ways users do.

Run as a script (the vanilla-RNN regressor is pickled from here, so the pickle names
``__main__.RNNRegressor`` and ``edgernn compress --model-file`` must be given this file):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/own_models/train_user_models.py \
        --out runs/own_models [--quick] [--only forecast,charlm,ner,sentiment]

Each ``OUT/NAME/`` gets what a user would hand over: ``model.pt``, ``example.npz`` (a few real
test inputs keyed by ``forward``'s argument name, ids in the user's vocabulary),
``vocab.json`` (the user's token -> id dict) and ``labels.json`` (class or tag names in output
order) where they apply, and ``user.json``: the training time and the user model's own
test-split metrics, scored with the metric code ``edgernn evaluate`` uses (the stand-in for
seqeval/sklearn in a user's script) on every test input alone, unpadded, so that they compare
with the bundle's scores.

- forecast: ``RNNRegressor`` (nn.RNN h=128, ``out[:, -1]``) on raw (N, 48, 1) floats, saved whole:
  ``torch.save(model, path)``;
- charlm: ``CharLM`` (2-layer LSTM h=128, embedding 64) on the joined training text cut into
  64-character windows, saved as ``model.state_dict()``;
- ner: ``LSTMTagger`` (bi-LSTM h=128, embedding 100), one sentence per step like PyTorch's
  tutorial, saved as ``model.state_dict()``;
- sentiment: ``SentimentLSTM`` (2-layer bi-LSTM h=128, embedding 100), batches of equal-length
  sentences, saved as ``{"state_dict", "word_to_idx", "config"}``; ``<unk>`` = 0, ``<pad>`` = 1.

Only the ``__main__`` block trains: importing this file (as ``--model-file`` does) defines
``RNNRegressor`` and the functions, nothing else.
"""

import argparse
import json
import math
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tutorial_models import (
    START_TAG,
    STOP_TAG,
    Attention,
    BiLSTM_CRF,
    CharLM,
    Decoder,
    Encoder,
    KeywordSpotter,
    LSTMTagger,
    SentimentLSTM,
    Seq2Seq,
)

WINDOW = 64  # characters per language-model sequence (what edgernn cuts the stream into too)


class RNNRegressor(nn.Module):
    """A vanilla RNN reading ``out[:, -1]`` of (N, T, 1) floats -> (N, 1)."""

    def __init__(self, input_size=1, hidden=128, output_size=1):
        super().__init__()
        self.rnn = nn.RNN(input_size=input_size, hidden_size=hidden, batch_first=True)
        self.fc = nn.Linear(hidden, output_size)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


def load(name, task):
    from edgernn.data import load_raw  # the user's data loader, here the builtin datasets

    return load_raw(f"builtin:{name}", task)


def write_json(path, value):
    Path(path).write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n")


def equal_length_batches(examples, length_of, batch_size, rng):
    """Batches of examples of one length each (no padding), in shuffled order."""
    by_length = defaultdict(list)
    for example in examples:
        by_length[length_of(example)].append(example)
    batches = []
    for group in by_length.values():
        rng.shuffle(group)
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


# ---------------------------------------------------------------- (a) forecast: RNN regressor


def train_forecast(out, sizes):
    raw = load("forecast", "regress")
    x = torch.from_numpy(np.stack([x for x, _ in raw.train]))
    y = torch.from_numpy(np.stack([y for _, y in raw.train]))
    model_args = {"hidden": sizes["hidden"]}
    model = RNNRegressor(**model_args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    for epoch in range(sizes["epochs"]):
        model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for start in range(0, len(x), 64):
            index = order[start : start + 64]
            optimizer.zero_grad()
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(index)
        print(f"forecast epoch {epoch + 1}: train mse {total / len(x):.4f}", flush=True)
    model.eval()
    torch.save(model, out / "model.pt")  # the whole module: __main__.RNNRegressor
    test_x = np.stack([x for x, _ in raw.test])
    test_y = np.stack([y for _, y in raw.test])
    with torch.no_grad():
        predicted = model(torch.from_numpy(test_x)).numpy()
    np.savez(out / "example.npz", x=test_x[:4])
    from edgernn.metrics import mae, mse

    variance = float(test_y.var())
    metrics = {"mse": mse(predicted, test_y), "mae": mae(predicted, test_y)}
    return metrics, {"test_variance": variance, "params": count(model), "model_args": model_args}


# ---------------------------------------------------------------- (b) charlm: Embedding-LSTM-Linear


def train_charlm(out, sizes):
    raw = load("charlm", "lm")
    text = "".join(raw.train)
    chars = sorted(set(text))
    char_to_idx = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([char_to_idx[c] for c in text])
    windows = [ids[i : i + WINDOW + 1] for i in range(0, len(ids) - WINDOW - 1, WINDOW)]
    model_args = {"vocab_size": len(chars), "embed": sizes["embed"], "hidden": sizes["hidden"]}
    model = CharLM(**model_args, layers=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(sizes["epochs"]):
        model.train()
        random.shuffle(windows)
        total = 0.0
        for start in range(0, len(windows), 32):
            batch = torch.stack(windows[start : start + 32])
            optimizer.zero_grad()
            logits, _ = model(batch[:, :-1])
            loss = loss_fn(logits.reshape(-1, len(chars)), batch[:, 1:].reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item()
        batches = math.ceil(len(windows) / 32)
        print(f"charlm epoch {epoch + 1}: train ppl {math.exp(total / batches):.3f}", flush=True)
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    write_json(out / "vocab.json", char_to_idx)
    # Scored like edgernn scores a language model: the test documents joined into one stream,
    # cut into non-overlapping windows, each read from a fresh state.
    stream = torch.tensor([char_to_idx[c] for c in "".join(raw.test)])
    nll, count_ = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(stream) - 1, WINDOW):
            piece = stream[start : start + WINDOW + 1]
            logits, _ = model(piece[None, :-1])
            nll += nn.functional.cross_entropy(logits[0], piece[1:], reduction="sum").item()
            count_ += len(piece) - 1
    unigram = Counter(text)
    unigram_nll = -sum(math.log(unigram[c] / len(text)) for c in "".join(raw.test)[1:])
    np.savez(out / "example.npz", x=stream[: 3 * WINDOW].reshape(3, WINDOW).numpy())
    from edgernn.metrics import bits_per_char, perplexity

    metrics = {"perplexity": perplexity(nll, count_), "bits_per_char": bits_per_char(nll, count_)}
    extra = {"unigram_perplexity": math.exp(unigram_nll / count_), "params": count(model)}
    return metrics, extra | {"model_args": model_args | {"layers": 2}}


# ---------------------------------------------------------------- (c) ner: the tutorial's tagger


def train_ner(out, sizes):
    raw = load("ner", "tag")
    word_to_ix = {"<unk>": 0}
    for words, _ in raw.train:
        for word in words:
            word_to_ix.setdefault(word, len(word_to_ix))
    tags = sorted({tag for _, sentence_tags in raw.train for tag in sentence_tags})
    tag_to_ix = {tag: i for i, tag in enumerate(tags)}

    def prepare_sequence(seq, to_ix):
        return torch.tensor([to_ix.get(w, 0) for w in seq], dtype=torch.long)

    model_args = {
        "embedding_dim": sizes["embed"],
        "hidden_dim": sizes["hidden"],
        "vocab_size": len(word_to_ix),
        "tagset_size": len(tag_to_ix),
    }
    model = LSTMTagger(**model_args)
    loss_function = nn.NLLLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = raw.train[: sizes.get("train_size")]
    for epoch in range(sizes["epochs"]):
        model.train()
        random.shuffle(train)
        total = 0.0
        for sentence, sentence_tags in train:
            model.zero_grad()
            tag_scores = model(prepare_sequence(sentence, word_to_ix))
            loss = loss_function(tag_scores, prepare_sequence(sentence_tags, tag_to_ix))
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"ner epoch {epoch + 1}: train loss {total / len(train):.4f}", flush=True)
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    write_json(out / "vocab.json", word_to_ix)
    write_json(out / "labels.json", tags)
    predicted, gold = [], []
    with torch.no_grad():
        for sentence, sentence_tags in raw.test:
            scores = model(prepare_sequence(sentence, word_to_ix))
            predicted.append([tags[i] for i in scores.argmax(1).tolist()])
            gold.append(sentence_tags)
    np.savez(out / "example.npz", sentence=prepare_sequence(raw.test[0][0], word_to_ix).numpy())
    from edgernn.metrics import entity_f1, token_accuracy

    metrics = {  # percent, as edgernn reports them
        "entity_f1": 100 * entity_f1(predicted, gold),
        "token_accuracy": 100 * token_accuracy(predicted, gold),
    }
    return metrics, {"params": count(model), "model_args": model_args}


# ---------------------------------------------------------------- (d) sentiment: 2-layer bi-LSTM


def train_sentiment(out, sizes):
    raw = load("sentiment", "classify")
    counts = Counter(word for text, _ in raw.train for word in text.lower().split())
    word_to_idx = {"<unk>": 0, "<pad>": 1}
    for word, _ in counts.most_common():
        word_to_idx[word] = len(word_to_idx)
    labels = sorted({label for _, label in raw.train})
    label_to_idx = {label: i for i, label in enumerate(labels)}

    def encode(text):
        return [word_to_idx.get(word, 0) for word in text.lower().split()]

    config = {
        "vocab_size": len(word_to_idx),
        "embedding_dim": sizes["embed"],
        "hidden_dim": sizes["hidden"],
        "output_dim": len(labels),
        "n_layers": 2,
        "bidirectional": True,
        "dropout": sizes["dropout"],
        "pad_idx": word_to_idx["<pad>"],
    }
    model = SentimentLSTM(**config)
    optimizer = torch.optim.Adam(model.parameters(), lr=sizes["lr"])
    criterion = nn.CrossEntropyLoss()
    examples = [(encode(text), label_to_idx[label]) for text, label in raw.train]
    rng = random.Random(0)
    for epoch in range(sizes["epochs"]):
        model.train()
        correct = 0
        for batch in equal_length_batches(examples, lambda e: len(e[0]), sizes["batch"], rng):
            text = torch.tensor([ids for ids, _ in batch])
            label = torch.tensor([label for _, label in batch])
            optimizer.zero_grad()
            predictions = model(text)
            loss = criterion(predictions, label)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            correct += (predictions.argmax(1) == label).sum().item()
        print(f"sentiment epoch {epoch + 1}: train acc {100 * correct / len(examples):.1f}")
    model.eval()
    model_info = {"state_dict": model.state_dict(), "word_to_idx": word_to_idx, "config": config}
    torch.save(model_info, out / "model.pt")
    write_json(out / "vocab.json", word_to_idx)
    write_json(out / "labels.json", labels)
    test = [(encode(text), label_to_idx[label]) for text, label in raw.test]
    predicted, gold = [], []
    with torch.no_grad():
        for batch in equal_length_batches(test, lambda e: len(e[0]), 256, random.Random(0)):
            scores = model(torch.tensor([ids for ids, _ in batch]))
            predicted += scores.argmax(1).tolist()
            gold += [label for _, label in batch]
    length = len(test[0][0])
    same = [ids for ids, _ in test if len(ids) == length][:4]
    np.savez(out / "example.npz", text=np.array(same, dtype=np.int64))
    from edgernn.metrics import accuracy, macro_f1

    metrics = {
        "accuracy": 100 * accuracy(predicted, gold),
        "macro_f1": 100 * macro_f1(predicted, gold, len(labels)),
    }
    return metrics, {"params": count(model), "model_args": config}


# ---------------------------------------------------------------- (e) ner-crf: BiLSTM-CRF tutorial


def train_ner_crf(out, sizes):
    raw = load("ner", "tag")
    word_to_ix = {"<unk>": 0}
    for words, _ in raw.train:
        for word in words:
            word_to_ix.setdefault(word, len(word_to_ix))
    tags = sorted({tag for _, sentence_tags in raw.train for tag in sentence_tags})
    tag_to_ix = {tag: i for i, tag in enumerate(tags + [START_TAG, STOP_TAG])}

    def prepare_sequence(seq, to_ix):
        return torch.tensor([to_ix.get(w, 0) for w in seq], dtype=torch.long)

    model_args = {
        "vocab_size": len(word_to_ix),
        "tag_to_ix": tag_to_ix,
        "embedding_dim": sizes["embed"],
        "hidden_dim": sizes["hidden"],
    }
    model = BiLSTM_CRF(**model_args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = raw.train[: sizes.get("train_size")]
    for epoch in range(sizes["epochs"]):
        model.train()
        random.shuffle(train)
        total = 0.0
        for sentence, sentence_tags in train:
            model.zero_grad()
            loss = model.neg_log_likelihood(
                prepare_sequence(sentence, word_to_ix), prepare_sequence(sentence_tags, tag_to_ix)
            )
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"ner-crf epoch {epoch + 1}: train nll {total / len(train):.4f}", flush=True)
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    write_json(out / "vocab.json", word_to_ix)
    write_json(out / "labels.json", list(tag_to_ix))  # output order, START and STOP included
    names = list(tag_to_ix)
    predicted, gold = [], []
    with torch.no_grad():
        for sentence, sentence_tags in raw.test:
            _, path = model(prepare_sequence(sentence, word_to_ix))
            predicted.append([names[i] for i in path])
            gold.append(sentence_tags)
    np.savez(out / "example.npz", sentence=prepare_sequence(raw.test[0][0], word_to_ix).numpy())
    from edgernn.metrics import entity_f1, token_accuracy

    metrics = {
        "entity_f1": 100 * entity_f1(predicted, gold),
        "token_accuracy": 100 * token_accuracy(predicted, gold),
    }
    return metrics, {"params": count(model), "model_args": model_args}


# ---------------------------------------------------------------- (f) kws: a CRNN keyword spotter

KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
KWS_LABELS = KEYWORDS + ["_unknown_", "_silence_"]  # Speech Commands' 12 classes
N_MELS, FRAMES = 40, 49  # one second of 25 ms windows every 20 ms


def keyword_clips(seed, count):
    """Synthetic Speech-Commands-like log-mel clips: (count, FRAMES, N_MELS) floats, labels.

    Words are sequences of "phonemes" (formant templates over the mel bins) that keywords share
    (no is on reversed, stop ends in up's vowel and go's consonant...), so only the order of
    sounds tells some keywords apart. Each clip draws a speaker (formant shift, spectral tilt),
    a speaking rate, a position in the second, a noise level and a quieter background word.
    """
    phones = np.random.default_rng(7)  # one phoneme inventory, whatever the split
    bins = np.arange(N_MELS)
    inventory = []
    for _ in range(14):
        centres = np.sort(phones.uniform(2, N_MELS - 3, size=phones.integers(2, 4)))
        widths, heights = phones.uniform(1.0, 3.5, len(centres)), phones.uniform(1, 3, len(centres))
        bumps = heights[:, None] * np.exp(
            -(((bins[None] - centres[:, None]) / widths[:, None]) ** 2)
        )
        inventory.append(bumps.sum(0))
    inventory = np.array(inventory)
    words = {
        "yes": [0, 1, 2], "no": [3, 4], "up": [5, 6], "down": [7, 8, 3], "left": [9, 1, 10, 11],
        "right": [12, 8, 11], "on": [4, 3], "off": [4, 10], "stop": [2, 11, 5, 6], "go": [13, 4],
    }  # fmt: skip
    keyword_ids = set(map(tuple, words.values()))
    rng = np.random.default_rng(seed)
    x = np.zeros((count, FRAMES, N_MELS), np.float32)
    y = []
    for i in range(count):
        label = KWS_LABELS[rng.integers(len(KWS_LABELS))]
        if label == "_unknown_":
            while tuple(sequence := list(rng.integers(14, size=rng.integers(2, 5)))) in keyword_ids:
                pass
        else:
            sequence = words.get(label, [])
        shift, tilt = rng.integers(-2, 3), rng.normal(0, 0.02)
        tilted = np.roll(inventory, shift, axis=1) * (1 + tilt * (bins - N_MELS / 2))
        spectrum = np.clip(tilted, 0, None)
        energy = np.full((FRAMES, N_MELS), rng.uniform(0.05, 0.4))
        energy += _spoken(rng, spectrum, rng.integers(14, size=2), rng.uniform(0.1, 0.5))
        energy += _spoken(rng, spectrum, sequence, rng.uniform(0.4, 1.4))
        energy *= rng.gamma(5.0, 1 / 5.0, size=energy.shape)  # frame-level noise
        x[i] = np.log(energy + 1e-3)
        y.append(label)
    return x, np.array(y)


def _spoken(rng, spectrum, sequence, gain):
    """Phonemes of ``sequence`` at a random rate and position, blended where they meet."""
    energy = np.zeros((FRAMES, N_MELS))
    if not len(sequence):
        return energy
    durations = rng.integers(3, 8, size=len(sequence))
    start = rng.integers(0, max(1, FRAMES - durations.sum()))
    frames = np.concatenate([[spectrum[p]] * d for p, d in zip(sequence, durations, strict=True)])
    kernel = np.array([0.25, 0.5, 0.25])  # coarticulation: each frame leaks into its neighbours
    frames = np.stack([np.convolve(f, kernel, mode="same") for f in frames.T], axis=1)
    end = min(FRAMES, start + len(frames))
    energy[start:end] = gain * frames[: end - start]
    return energy


def train_kws(out, sizes):
    data = out / "data"
    data.mkdir(exist_ok=True)
    splits = {}
    for split, seed in (("train", 1), ("valid", 2), ("test", 3)):
        x, y = keyword_clips(seed, sizes[split])
        lengths = np.full(len(x), FRAMES)
        np.savez(data / f"{split}.npz", x=x, lengths=lengths, y=y)
        splits[split] = (torch.from_numpy(x), torch.tensor([KWS_LABELS.index(v) for v in y]))
    model_args = {"n_mels": N_MELS, "hidden": sizes["hidden"], "n_classes": len(KWS_LABELS)}
    model = KeywordSpotter(**model_args)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = splits["train"]
    for epoch in range(sizes["epochs"]):
        model.train()
        order, correct = torch.randperm(len(x)), 0
        for start in range(0, len(x), 64):
            index = order[start : start + 64]
            optimizer.zero_grad()
            logits = model(x[index])
            loss_fn(logits, y[index]).backward()
            optimizer.step()
            correct += (logits.argmax(1) == y[index]).sum().item()
        print(f"kws epoch {epoch + 1}: train acc {100 * correct / len(x):.1f}", flush=True)
    model.eval()
    torch.save(model.state_dict(), out / "model.pt")
    write_json(out / "labels.json", KWS_LABELS)
    test_x, test_y = splits["test"]
    with torch.no_grad():
        predicted = model(test_x).argmax(1).tolist()
    np.savez(out / "example.npz", x=test_x[:4].numpy())
    from edgernn.metrics import accuracy, macro_f1

    metrics = {
        "accuracy": 100 * accuracy(predicted, test_y.tolist()),
        "macro_f1": 100 * macro_f1(predicted, test_y.tolist(), len(KWS_LABELS)),
    }
    return metrics, {"params": count(model), "model_args": model_args}


# ---------------------------------------------------------------- (g) translate: attention seq2seq

SPECIALS = ["<unk>", "<pad>", "<sos>", "<eos>"]  # torchtext's order in the tutorial
UNK, PAD, SOS, EOS = range(4)
MAX_LEN = 20  # translate_sentence's max_len: ISO dates are 10 characters


def train_translate(out, sizes):
    raw = load("translate", "seq2seq")
    src_itos = SPECIALS + sorted({c for text, _ in raw.train for c in text})
    trg_itos = SPECIALS + sorted({c for _, text in raw.train for c in text})
    src_stoi = {c: i for i, c in enumerate(src_itos)}
    trg_stoi = {c: i for i, c in enumerate(trg_itos)}

    def numericalize(text, stoi):  # the tutorial's fields: <sos> tokens <eos>
        return [SOS] + [stoi.get(c, UNK) for c in text] + [EOS]

    enc = Encoder(len(src_itos), sizes["emb"], sizes["hidden"], sizes["hidden"], 0.5)
    attn = Attention(sizes["hidden"], sizes["hidden"])
    dec = Decoder(len(trg_itos), sizes["emb"], sizes["hidden"], sizes["hidden"], 0.5, attn)
    model = Seq2Seq(enc, dec, "cpu")
    for name, param in model.named_parameters():  # the tutorial's init_weights
        nn.init.normal_(param.data, 0, 0.01) if "weight" in name else nn.init.constant_(param, 0)
    optimizer = torch.optim.Adam(model.parameters())
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    pairs = [(numericalize(a, src_stoi), numericalize(b, trg_stoi)) for a, b in raw.train]
    rng = random.Random(0)
    for epoch in range(sizes["epochs"]):
        model.train()
        total = 0.0
        batches = equal_length_batches(pairs, lambda p: (len(p[0]), len(p[1])), 64, rng)
        for batch in batches:
            src = torch.tensor([a for a, _ in batch]).T  # (src_len, batch): time-major
            trg = torch.tensor([b for _, b in batch]).T
            optimizer.zero_grad()
            output = model(src, trg)
            loss = criterion(output[1:].reshape(-1, output.shape[-1]), trg[1:].reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1)
            optimizer.step()
            total += loss.item()
        print(f"translate epoch {epoch + 1}: train loss {total / len(batches):.4f}", flush=True)
    model.eval()
    torch.save(model, out / "model.pt")  # whole: Seq2Seq(encoder, decoder) takes modules
    vocab = {"src": src_itos, "trg": trg_itos, "wrap_source": True}
    write_json(out / "vocab.json", vocab)
    translations = [translate_sentence(model, text, src_stoi, trg_itos) for text, _ in raw.test]
    sources = [numericalize(text, src_stoi) for text, _ in raw.test[:2]]
    width = max(map(len, sources))
    src = np.array([ids + [PAD] * (width - len(ids)) for ids in sources]).T
    trg = np.array([numericalize(text, trg_stoi) for _, text in raw.test[:2]]).T
    np.savez(out / "example.npz", src=src, trg=trg)
    from edgernn.metrics import exact_match

    gold = [text for _, text in raw.test]
    metrics = {"exact_match": 100 * exact_match(translations, gold)}
    # What the bundle's greedy decoding must reproduce, character for character.
    parity = [{"source": text, "greedy": translations[i]} for i, (text, _) in enumerate(raw.test)]
    return metrics, {"params": count(model), "greedy": parity[: sizes["parity"]]}


def translate_sentence(model, sentence, src_stoi, trg_itos):
    """The tutorial's greedy decoding of one sentence (no padding, no batch)."""
    ids = [SOS] + [src_stoi.get(c, UNK) for c in sentence] + [EOS]
    with torch.no_grad():
        encoder_outputs, hidden = model.encoder(torch.tensor(ids).unsqueeze(1))
        tokens = [SOS]
        for _ in range(MAX_LEN):
            output, hidden = model.decoder(torch.tensor([tokens[-1]]), hidden, encoder_outputs)
            tokens.append(output.argmax(1).item())
            if tokens[-1] == EOS:
                break
    return "".join(trg_itos[i] for i in tokens[1:] if i != EOS)


def count(model):
    return sum(p.numel() for p in model.parameters())


TRAINERS = {
    "forecast": train_forecast,
    "charlm": train_charlm,
    "ner": train_ner,
    "sentiment": train_sentiment,
    "ner-crf": train_ner_crf,
    "kws": train_kws,
    "translate": train_translate,
}
SIZES = {
    "forecast": {"hidden": 128, "epochs": 30},
    "charlm": {"embed": 64, "hidden": 128, "epochs": 12},
    "ner": {"embed": 100, "hidden": 128, "epochs": 3},
    "sentiment": {
        "embed": 100,
        "hidden": 128,
        "epochs": 10,
        "dropout": 0.2,
        "lr": 2e-3,
        "batch": 16,
    },
    "ner-crf": {"embed": 100, "hidden": 256, "epochs": 3},
    "kws": {"hidden": 128, "epochs": 15, "train": 8000, "valid": 1000, "test": 2000},
    "translate": {"emb": 64, "hidden": 128, "epochs": 20, "parity": 100},
}
QUICK = {
    "forecast": {"hidden": 16, "epochs": 1},
    "charlm": {"embed": 8, "hidden": 16, "epochs": 1},
    "ner": {"embed": 8, "hidden": 16, "epochs": 1, "train_size": 300},
    "sentiment": {"embed": 8, "hidden": 16, "epochs": 1, "dropout": 0.2, "lr": 2e-3, "batch": 16},
    "ner-crf": {"embed": 8, "hidden": 16, "epochs": 1, "train_size": 300},
    "kws": {"hidden": 16, "epochs": 1, "train": 300, "valid": 100, "test": 100},
    "translate": {"emb": 8, "hidden": 16, "epochs": 1, "parity": 20},
}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/own_models")
    parser.add_argument("--quick", action="store_true", help="tiny models, one epoch")
    parser.add_argument("--only", default=",".join(TRAINERS))
    args = parser.parse_args()
    for name in args.only.split(","):
        torch.manual_seed(0)  # per model, so each trains the same whichever others run
        random.seed(0)
        folder = Path(args.out) / name
        folder.mkdir(parents=True, exist_ok=True)
        sizes = (QUICK if args.quick else SIZES)[name]
        started = time.perf_counter()
        metrics, extra = TRAINERS[name](folder, sizes)
        seconds = round(time.perf_counter() - started, 1)
        record = {"name": name, "sizes": sizes, "train_s": seconds, "test": metrics} | extra
        write_json(folder / "user.json", record)
        print(json.dumps(record), flush=True)
