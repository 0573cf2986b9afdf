"""Tutorial-style attention seq2seq models (Bahdanau attention, the PyTorch tutorial's shape).

``Encoder``/``Attention``/``Decoder``/``Seq2Seq`` follow the well-known tutorial: time-major
(src (S, B)) by default, ``batch_first=True`` for the batch-first variant. The LSTM variant's
decoder takes ``(input, hidden, cell, encoder_outputs)``. Tiny sizes (emb, hidden <= 16).
"""

import random

import torch
import torch.nn.functional as F
from torch import nn

SPECIALS = ["<unk>", "<pad>", "<sos>", "<eos>"]  # torchtext's order in the tutorial
SRC_VOCAB = SPECIALS + [
    "ein",
    "mann",
    "eine",
    "frau",
    "hund",
    "katze",
    "sieht",
    "läuft",
    "schnell",
    "klein",
    "rot",
]
TRG_VOCAB = SPECIALS + [
    "a",
    "man",
    "woman",
    "dog",
    "cat",
    "sees",
    "runs",
    "fast",
    "slow",
    "big",
    "small",
    "red",
]


class Encoder(nn.Module):
    def __init__(self, input_dim, emb_dim, enc_hid_dim, dec_hid_dim, cell="gru", batch_first=False):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, emb_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb_dim, enc_hid_dim, bidirectional=True, batch_first=batch_first)
        self.fc = nn.Linear(enc_hid_dim * 2, dec_hid_dim)
        self.fc_cell = nn.Linear(enc_hid_dim * 2, dec_hid_dim) if cell == "lstm" else None

    def forward(self, src):
        embedded = self.embedding(src)
        if self.fc_cell is None:
            outputs, hidden = self.rnn(embedded)
            return outputs, torch.tanh(self.fc(torch.cat((hidden[-2], hidden[-1]), dim=1)))
        outputs, (hidden, cell) = self.rnn(embedded)
        hidden = torch.tanh(self.fc(torch.cat((hidden[-2], hidden[-1]), dim=1)))
        cell = torch.tanh(self.fc_cell(torch.cat((cell[-2], cell[-1]), dim=1)))
        return outputs, hidden.unsqueeze(0), cell.unsqueeze(0)  # (1, B, H), as nn.LSTM takes


class Attention(nn.Module):
    def __init__(self, enc_hid_dim, dec_hid_dim, batch_first=False):
        super().__init__()
        self.batch_first = batch_first
        self.attn = nn.Linear(enc_hid_dim * 2 + dec_hid_dim, dec_hid_dim)
        self.v = nn.Linear(dec_hid_dim, 1, bias=False)

    def forward(self, hidden, encoder_outputs, mask=None):
        if not self.batch_first:
            encoder_outputs = encoder_outputs.permute(1, 0, 2)
        src_len = encoder_outputs.shape[1]
        hidden = hidden.unsqueeze(1).repeat(1, src_len, 1)
        energy = torch.tanh(self.attn(torch.cat((hidden, encoder_outputs), dim=2)))
        attention = self.v(energy).squeeze(2)
        if mask is not None:
            attention = attention.masked_fill(mask == 0, -1e10)
        return F.softmax(attention, dim=1)


class Decoder(nn.Module):
    """GRU decoder: ``forward(input, hidden, encoder_outputs)`` -> ``(prediction, hidden)``."""

    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, attention, batch_first=False):
        super().__init__()
        self.batch_first = batch_first
        self.attention = attention
        self.embedding = nn.Embedding(output_dim, emb_dim)
        self.rnn = nn.GRU(enc_hid_dim * 2 + emb_dim, dec_hid_dim)
        self.fc_out = nn.Linear(enc_hid_dim * 2 + dec_hid_dim + emb_dim, output_dim)

    def context(self, embedded, hidden, encoder_outputs, mask=None):
        a = self.attention(hidden, encoder_outputs, mask)
        if not self.batch_first:
            encoder_outputs = encoder_outputs.permute(1, 0, 2)
        weighted = torch.bmm(a.unsqueeze(1), encoder_outputs).permute(1, 0, 2)
        return a, weighted, torch.cat((embedded, weighted), dim=2)

    def forward(self, input, hidden, encoder_outputs):
        embedded = self.embedding(input.unsqueeze(0))
        _, weighted, rnn_input = self.context(embedded, hidden, encoder_outputs)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        embedded, output, weighted = embedded.squeeze(0), output.squeeze(0), weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        return prediction, hidden.squeeze(0)


class MaskedDecoder(Decoder):
    """The tutorial's masked variant: takes the source mask, returns the attention too."""

    def forward(self, input, hidden, encoder_outputs, mask):
        embedded = self.embedding(input.unsqueeze(0))
        a, weighted, rnn_input = self.context(embedded, hidden, encoder_outputs, mask)
        output, hidden = self.rnn(rnn_input, hidden.unsqueeze(0))
        embedded, output, weighted = embedded.squeeze(0), output.squeeze(0), weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        return prediction, hidden.squeeze(0), a


class LSTMDecoder(Decoder):
    """LSTM decoder: ``forward(input, hidden, cell, encoder_outputs)``."""

    def __init__(self, output_dim, emb_dim, enc_hid_dim, dec_hid_dim, attention, batch_first=False):
        super().__init__(output_dim, emb_dim, enc_hid_dim, dec_hid_dim, attention, batch_first)
        self.rnn = nn.LSTM(enc_hid_dim * 2 + emb_dim, dec_hid_dim)

    def forward(self, input, hidden, cell, encoder_outputs):
        embedded = self.embedding(input.unsqueeze(0))
        _, weighted, rnn_input = self.context(embedded, hidden[-1], encoder_outputs)
        output, (hidden, cell) = self.rnn(rnn_input, (hidden, cell))
        embedded, output, weighted = embedded.squeeze(0), output.squeeze(0), weighted.squeeze(0)
        prediction = self.fc_out(torch.cat((output, weighted, embedded), dim=1))
        return prediction, hidden, cell


class Seq2Seq(nn.Module):
    """Loops over the target in Python with random teacher forcing: no single graph."""

    def __init__(self, encoder, decoder, batch_first=False, masked=False):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.batch_first, self.masked = batch_first, masked

    def forward(self, src, trg, teacher_forcing_ratio=0.5):
        if self.batch_first:
            trg = trg.transpose(0, 1)
        trg_len, batch = trg.shape
        outputs = torch.zeros(trg_len, batch, self.decoder.fc_out.out_features)
        encoder_outputs, *state = self.encoder(src)
        extra = [torch.ones(batch, encoder_outputs.shape[0 if not self.batch_first else 1])]
        extra = extra if self.masked else []
        input = trg[0, :]
        for t in range(1, trg_len):
            output, *state = self.decoder(input, *state, encoder_outputs, *extra)
            if self.masked:
                state = state[:1]  # the attention weights are not fed back
            outputs[t] = output
            teacher_force = random.random() < teacher_forcing_ratio
            input = trg[t] if teacher_force else output.argmax(1)
        return outputs


def tutorial_model(cell: str = "gru", batch_first: bool = False, masked: bool = False) -> Seq2Seq:
    """A seeded tiny model: emb 8, encoder hidden 6 per direction, decoder hidden 10."""
    torch.manual_seed(0)
    emb, enc_hid, dec_hid = 8, 6, 10
    attention = Attention(enc_hid, dec_hid, batch_first)
    encoder = Encoder(len(SRC_VOCAB), emb, enc_hid, dec_hid, cell, batch_first)
    kind = LSTMDecoder if cell == "lstm" else MaskedDecoder if masked else Decoder
    decoder = kind(len(TRG_VOCAB), emb, enc_hid, dec_hid, attention, batch_first)
    return Seq2Seq(encoder, decoder, batch_first, masked).eval()


class OddDecoder(nn.Module):
    """A decoder whose forward is not a one-step decoder: no encoder outputs argument."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, y, z, w):
        return self.fc(x)


class OddSeq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(5, 4)
        self.decoder = OddDecoder()

    def forward(self, src, trg):
        return self.decoder(self.encoder(src), trg, trg, trg)
