"""Token vocabularies with the four reserved symbols every model relies on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)


class Vocab:
    """Maps tokens to ids; ids 0-3 are always <pad>, <unk>, <bos>, <eos>."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        self.itos = list(tokens)
        self.stoi = {token: index for index, token in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("a vocabulary cannot list a token twice")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], max_size: int = 50_000) -> Vocab:
        """Most frequent tokens first, ties broken alphabetically so builds are reproducible."""
        counts = Counter(token for sequence in sequences for token in sequence)
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(list(SPECIALS) + [token for token, _ in ranked[: max_size - len(SPECIALS)]])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first <eos>, without padding or <bos>."""
        out = []
        for index in ids:
            if index == EOS_ID:
                break
            if index not in (PAD_ID, BOS_ID):
                out.append(self.itos[index])
        return out
