"""A user's own models, written the way PyTorch tutorials write them, at realistic sizes.

Nothing here knows edgernn: these are the classes a user's ``models.py`` would hold, and what
``edgernn compress --model-file`` imports. ``RNNRegressor`` lives in ``train_user_models.py``
instead, because that model is pickled whole from the script run as ``__main__``.

- ``CharLM``: Embedding -> LSTM -> Linear, ``forward(x, hidden=None)`` -> ``(logits, hidden)``
  (the char-rnn / "generating names" style), saved as a state dict;
- ``LSTMTagger``: PyTorch's "Sequence Models and LSTM Networks" tagger, bidirectional: one
  unbatched sentence, time-major, log-softmax per word; saved as a state dict;
- ``SentimentLSTM``: a 2-layer bidirectional LSTM classifier reading ``hidden[-2]`` and
  ``hidden[-1]`` (the "Upgraded Sentiment Analysis" tutorial without packing), saved as a
  ``model_info`` dict with its ``word_to_idx`` and constructor config.
"""

import torch
from torch import nn


class CharLM(nn.Module):
    """Embedding -> LSTM -> Linear over characters."""

    def __init__(self, vocab_size, embed=64, hidden=128, layers=2, dropout=0.2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True, dropout=dropout)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x, hidden=None):
        out, hidden = self.lstm(self.embed(x), hidden)
        return self.fc(out), hidden


class LSTMTagger(nn.Module):
    """One sentence of word ids ``(T,)`` -> log-probabilities of each word's tag ``(T, tags)``."""

    def __init__(self, embedding_dim, hidden_dim, vocab_size, tagset_size):
        super().__init__()
        self.hidden_dim = hidden_dim
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, bidirectional=True)
        self.hidden2tag = nn.Linear(2 * hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return torch.log_softmax(tag_space, dim=1)


class SentimentLSTM(nn.Module):
    """Word ids ``(N, T)`` -> class scores ``(N, output_dim)``."""

    def __init__(
        self,
        vocab_size,
        embedding_dim,
        hidden_dim,
        output_dim,
        n_layers=2,
        bidirectional=True,
        dropout=0.5,
        pad_idx=1,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_idx)
        self.lstm = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=n_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=dropout,
        )
        self.fc = nn.Linear(hidden_dim * 2 if bidirectional else hidden_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, text):
        embedded = self.dropout(self.embedding(text))
        _, (hidden, _) = self.lstm(embedded)
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden)
