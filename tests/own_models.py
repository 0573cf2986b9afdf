"""Tutorial-style user models, written the way tutorials write them (tiny sizes)."""

import torch
from torch import nn


class RNNRegressor(nn.Module):
    """A vanilla RNN regressor reading ``out[:, -1]`` on (N, 10, 1) floats."""

    def __init__(self, hidden=12):
        super().__init__()
        self.rnn = nn.RNN(input_size=1, hidden_size=hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


class CharLM(nn.Module):
    """Embedding -> LSTM -> Linear, ``forward(x, hidden)`` returning ``(logits, hidden)``."""

    def __init__(self, vocab_size=20, embed=8, hidden=12, layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x, hidden=None):
        out, hidden = self.lstm(self.embed(x), hidden)
        return self.fc(out), hidden


class LSTMTagger(nn.Module):
    """PyTorch's sequence-models tutorial: one unbatched sentence, time-major, log-softmax."""

    def __init__(self, vocab_size=30, tagset_size=5, embedding_dim=6, hidden_dim=8):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, bidirectional=True)
        self.hidden2tag = nn.Linear(2 * hidden_dim, tagset_size)

    def forward(self, sentence):
        embeds = self.word_embeddings(sentence)
        lstm_out, _ = self.lstm(embeds.view(len(sentence), 1, -1))
        tag_space = self.hidden2tag(lstm_out.view(len(sentence), -1))
        return torch.log_softmax(tag_space, dim=1)


class SentimentLSTM(nn.Module):
    """2-layer bidirectional LSTM classifier concatenating ``hidden[-2]`` and ``hidden[-1]``."""

    def __init__(self, vocab_size=40, embedding_dim=6, hidden_dim=8, output_dim=3):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            embedding_dim,
            hidden_dim,
            num_layers=2,
            bidirectional=True,
            batch_first=True,
            dropout=0.3,
        )
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(hidden_dim * 2, output_dim)

    def forward(self, text):
        _, (hidden, _) = self.lstm(self.embedding(text))
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden)
