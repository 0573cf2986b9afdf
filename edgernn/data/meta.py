"""What a model must remember about its data: tokenization, vocabularies, labels, scaling."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from edgernn.errors import EdgeRNNError
from edgernn.text import TextRules


@dataclass(frozen=True)
class DataMeta:
    """Saved in checkpoints and bundles; inference encodes inputs with exactly this."""

    task: str
    tokens: str | None = None  # char|word for raw text inputs; None for numeric or pre-split
    vocab: list[str] | None = None  # source tokens, ids 0-3 are <pad>, <unk>, <bos>, <eos>
    tgt_vocab: list[str] | None = None  # seq2seq target tokens, same reserved ids
    labels: list[str] | None = None  # class names (classify) or BIO tags (tag)
    norm: dict | None = None  # numeric scaling: x_mean, x_std (per feature), y_mean, y_std
    input_size: int = 0  # numeric features per step
    source: str = ""  # the DATA argument the model was trained on
    # TextRules.to_manifest() of a token model; None: made before rules were recorded (legacy)
    text: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def text_rules(self) -> TextRules | None:
        """How this model's text becomes tokens; None for numeric inputs."""
        if self.vocab is None:
            return None
        if self.text is None:  # an older checkpoint: list(text) or str.split(), as it was trained
            return TextRules.legacy(self.tokens or "word")
        rules = TextRules.from_manifest(self.text)
        if rules.tokens != (self.tokens or "word"):  # tag data comes split into words
            raise EdgeRNNError(f"text rules cut {rules.tokens} tokens, the data has {self.tokens}")
        return rules

    def check_fits(self, spec) -> None:
        """Refuse a ``DataMeta`` that cannot encode data for the model ``spec`` describes.

        Raises:
            EdgeRNNError: a vocabulary, label list or scaling is missing, of the wrong type,
                or of another size than the model's; the text rules are damaged.
        """
        if self.task != spec.task:
            raise EdgeRNNError(f"data is for task {self.task!r}, the model is {spec.task!r}")
        if spec.vocab_size > 0:
            # The embedding may have rows no token maps to, never fewer rows than tokens.
            _check_names("vocab", self.vocab, spec.vocab_size, "token inputs", at_most=True)
            self.text_rules()  # refuses damaged or unknown rules
        else:
            _check_norm(self.norm, "x", spec.input_size)
        needed = {"seq2seq": "tgt_vocab", "classify": "labels", "tag": "labels"}
        if spec.task in needed:
            name = needed[spec.task]
            _check_names(name, getattr(self, name), spec.num_outputs, f"a {spec.task} model")
        if spec.task == "regress":
            _check_norm(self.norm, "y", spec.num_outputs)

    @classmethod
    def from_dict(cls, values: dict) -> DataMeta:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _check_names(name: str, values: object, size: int, needs: str, at_most: bool = False) -> None:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        shown = "None" if values is None else type(values).__name__
        raise EdgeRNNError(f"{name} must be a list of strings for {needs}, got {shown}")
    if len(values) > size if at_most else len(values) != size:
        wanted = f"at most {size}" if at_most else str(size)
        raise EdgeRNNError(f"{name} has {len(values)} entries, the model expects {wanted}")


def _check_norm(norm: object, side: str, size: int) -> None:
    for key in (f"{side}_mean", f"{side}_std"):
        values = norm.get(key) if isinstance(norm, dict) else None
        if not isinstance(values, list) or len(values) != size:
            raise EdgeRNNError(f"norm.{key} must be a list of {size} numbers, got {values!r:.60}")
        if not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
            raise EdgeRNNError(f"norm.{key} must hold finite numbers")


def fit_normalization(xs: list[np.ndarray], ys: list[np.ndarray] | None) -> dict:
    """Per-feature mean and std over every valid step of the training split only."""
    steps = np.concatenate(xs, axis=0).astype(np.float64)
    norm = {"x_mean": steps.mean(axis=0).tolist(), "x_std": _safe_std(steps).tolist()}
    if ys is not None:
        targets = np.stack(ys).astype(np.float64)
        norm |= {"y_mean": targets.mean(axis=0).tolist(), "y_std": _safe_std(targets).tolist()}
    return norm


def _safe_std(values: np.ndarray) -> np.ndarray:
    # A constant feature would divide by zero; leave it unscaled instead.
    std = values.std(axis=0)
    return np.where(std > 1e-8, std, 1.0)


def normalize_x(x: np.ndarray, norm: dict) -> np.ndarray:
    return ((x - np.asarray(norm["x_mean"])) / np.asarray(norm["x_std"])).astype(np.float32)


def normalize_y(y: np.ndarray, norm: dict) -> np.ndarray:
    return ((y - np.asarray(norm["y_mean"])) / np.asarray(norm["y_std"])).astype(np.float32)


def denormalize_y(y: np.ndarray, norm: dict) -> np.ndarray:
    return y * np.asarray(norm["y_std"], dtype=np.float32) + np.asarray(
        norm["y_mean"], dtype=np.float32
    )
