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
  ``model_info`` dict with its ``word_to_idx`` and constructor config;
- ``BiLSTM_CRF``: PyTorch's "Advanced: Making Dynamic Decisions and the Bi-LSTM CRF" tagger
  (START/STOP tags, ``neg_log_likelihood`` for training, ``forward(sentence)`` ->
  ``(path_score, tag_seq)`` by Viterbi, the path a list of ints), with the forward algorithm
  and Viterbi vectorized over tags as users do to train it on more than two sentences;
- ``KeywordSpotter``: a CRNN keyword spotter (Conv1d + BatchNorm + ReLU front end over log-mel
  frames, a GRU, a Linear on its last state), ``forward(x)`` on ``(N, T, n_mels)``.

- ``Encoder``/``Attention``/``Decoder``/``Seq2Seq``: the "Neural Machine Translation by
  Jointly Learning to Align and Translate" tutorial (bidirectional GRU encoder, Bahdanau
  attention, a GRU decoder taking ``(input, hidden, encoder_outputs)``, time-major tensors,
  ``forward(src, trg, teacher_forcing_ratio)`` looping over the target with random teacher
  forcing), pickled whole.

The last three are not edgernn's shapes (a CRF on top, a conv front end, a Python loop over
the target): compress distills from them as black-box teachers; the seq2seq also exports by
parts.
"""

import random

import torch
import torch.nn.functional as F  # noqa: N812 - the tutorial's name
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


START_TAG, STOP_TAG = "<START>", "<STOP>"


class BiLSTM_CRF(nn.Module):  # noqa: N801 - the tutorial's name
    """One unbatched sentence ``(T,)`` -> ``(score, best_path)``: Viterbi over CRF scores."""

    def __init__(self, vocab_size, tag_to_ix, embedding_dim, hidden_dim):
        super().__init__()
        self.tag_to_ix = tag_to_ix
        self.tagset_size = len(tag_to_ix)
        self.word_embeds = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim // 2, num_layers=1, bidirectional=True)
        self.hidden2tag = nn.Linear(hidden_dim, self.tagset_size)
        # transitions[i, j]: the score of moving *to* tag i *from* tag j.
        self.transitions = nn.Parameter(torch.randn(self.tagset_size, self.tagset_size))
        self.transitions.data[tag_to_ix[START_TAG], :] = -10000
        self.transitions.data[:, tag_to_ix[STOP_TAG]] = -10000

    def _get_lstm_features(self, sentence):
        embeds = self.word_embeds(sentence).view(len(sentence), 1, -1)
        lstm_out, _ = self.lstm(embeds)
        return self.hidden2tag(lstm_out.view(len(sentence), -1))

    def _forward_alg(self, feats):
        alphas = torch.full((self.tagset_size,), -10000.0)
        alphas[self.tag_to_ix[START_TAG]] = 0.0
        for feat in feats:
            alphas = torch.logsumexp(alphas[None, :] + self.transitions, dim=1) + feat
        return torch.logsumexp(alphas + self.transitions[self.tag_to_ix[STOP_TAG]], dim=0)

    def _score_sentence(self, feats, tags):
        tags = torch.cat([torch.tensor([self.tag_to_ix[START_TAG]]), tags])
        score = (
            self.transitions[tags[1:], tags[:-1]].sum() + feats[range(len(feats)), tags[1:]].sum()
        )
        return score + self.transitions[self.tag_to_ix[STOP_TAG], tags[-1]]

    def _viterbi_decode(self, feats):
        backpointers = []
        scores = torch.full((self.tagset_size,), -10000.0)
        scores[self.tag_to_ix[START_TAG]] = 0
        for feat in feats:
            best, best_ids = (scores[None, :] + self.transitions).max(dim=1)
            backpointers.append(best_ids.tolist())
            scores = best + feat
        terminal = scores + self.transitions[self.tag_to_ix[STOP_TAG]]
        best_tag_id = int(terminal.argmax())
        path_score = terminal[best_tag_id]
        best_path = [best_tag_id]
        for bptrs_t in reversed(backpointers):
            best_tag_id = bptrs_t[best_tag_id]
            best_path.append(best_tag_id)
        start = best_path.pop()
        assert start == self.tag_to_ix[START_TAG]
        best_path.reverse()
        return path_score, best_path

    def neg_log_likelihood(self, sentence, tags):
        feats = self._get_lstm_features(sentence)
        return self._forward_alg(feats) - self._score_sentence(feats, tags)

    def forward(self, sentence):
        return self._viterbi_decode(self._get_lstm_features(sentence))


class KeywordSpotter(nn.Module):
    """Log-mel frames ``(N, T, n_mels)`` -> keyword logits ``(N, n_classes)``."""

    def __init__(self, n_mels=40, channels=64, hidden=128, n_classes=12):
        super().__init__()
        self.conv = nn.Conv1d(n_mels, channels, kernel_size=5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(channels)
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x.transpose(1, 2)))).transpose(1, 2)
        _, h = self.gru(x)
        return self.fc(h[-1])


class Encoder(nn.Module):
    """Source ids ``(src_len, batch)`` -> outputs ``(src_len, batch, 2 * enc_hid)``, hidden."""

    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        self.rnn = nn.GRU(emb_dim, enc_hid_dim, bidirectional=True)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src):
        embedded = self.dropout(self.embedding(src))
        outputs, hidden = self.rnn(embedded)
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)))
        return outputs, hidden


class Attention(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim):
        super().__init__()
        self.attn = nn.Linear((enc_hid_dim * 2) + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs):
        src_len = encoder_outputs.shape[0]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        return F.softmax(attention, dim=1)


class Decoder(nn.Module):
    """One step: ``(input (batch,), hidden, encoder_outputs)`` -> ``(prediction, hidden)``."""

    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, dropout, attention):
        super().__init__()
        self.output_dim = output_dim
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU((enc_hid_dim * 2) + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear((enc_hid_dim * 2) + dec_hid_dim + emb_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input, hidden, encoder_outputs):  # noqa: A002 - the tutorial's name
        input = input.unsqueeze(0)
        embedded = self.dropout(self.embedding(input))
        a = self.attention(hidden, encoder_outputs).unsqueeze(1)
        encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a, encoder_outputs).permute(1, 0, 2)
        output, hidden = self.rnn(torch.cat((embedded, weighted), dim=2), hidden.unsqueeze(0))
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=2).squeeze(0))
        return prediction, hidden.squeeze(0)


class Seq2Seq(nn.Module):
    def __init__(self, encoder, decoder, device):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.device = device

    def forward(self, src, trg, teacher_forcing_ratio=0.5):
        batch_size, trg_len = src.shape[1], trg.shape[0]
        outputs = torch.zeros(trg_len, batch_size, self.decoder.output_dim).to(self.device)
        encoder_outputs, hidden = self.encoder(src)
        input = trg[0, :]  # noqa: A001 - the tutorial's name
        for t in range(1, trg_len):
            output, hidden = self.decoder(input, hidden, encoder_outputs)
            outputs[t] = output
            teacher_force = random.random() < teacher_forcing_ratio
            input = trg[t] if teacher_force else output.argmax(1)  # noqa: A001
        return outputs
