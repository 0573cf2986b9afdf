"""Recipes: every shipped one parses; mistakes are one clear error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgernn.errors import EdgeRNNError
from edgernn.recipe.parse import load_recipe

PIPELINES = sorted((Path(__file__).parent.parent / "pipelines").glob("*.toml"))


def test_the_pipelines_cover_every_cell_direction_and_seq2seq():
    recipes = [load_recipe(path) for path in PIPELINES]
    assert len(recipes) == 7
    assert {r.teacher.cell for r in recipes} == {"rnn", "lstm", "gru"}
    assert any(r.teacher.bidirectional for r in recipes)
    assert {r.data.task for r in recipes} == {"classify", "tag", "lm", "regress", "seq2seq"}
    default = load_recipe(Path(PIPELINES[0]).parent / "sentiment_bilstm.toml")
    assert default.teacher.layers == 2 and default.teacher.bidirectional


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text('[data]\nsource = "builtin:sentiment"\ntask = "classify"\n' + text)
    return path


def test_values_map_onto_the_stage_configs(tmp_path):
    text = "[teacher]\nhidden = 32\n[compress]\nprune = 0.5\nno_quantize = true\n"
    text += "augment = 0.2\nregression_kd = 'mse'\n"
    text += "[bench]\nbatch_sizes = [1, 4]\nmin_time_s = 0\n"
    recipe = load_recipe(_write(tmp_path, text))
    config = recipe.compress.config()
    assert recipe.teacher.model_choices()["hidden"] == 32
    assert config.prune.amount == 0.5 and config.quantize is None
    assert (config.distill.augment, config.distill.regression_kd) == (0.2, "mse")
    assert recipe.bench.batch_sizes == (1, 4) and recipe.bench.min_time_s == 0.0
    assert recipe.name == "recipe"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[teacher]\nhiden = 8\n", "recipe.toml: [teacher] unknown key 'hiden'; known: "),
        ("[teachr]\n", "recipe.toml: unknown section [teachr]"),
        ("[teacher]\nhidden = 'big'\n", "[teacher] hidden must be an integer, got 'big'"),
        ("[teacher]\nhidden = 0\n", "[teacher] hidden must be at least 1"),
        ("[teacher]\ncell = 'lstn'\n", "[teacher] cell 'lstn' is not one of rnn, lstm, gru"),
        ("[teacher]\nattention = 'luong'\n", "[teacher] --attention only applies"),
        ("[compress]\nprune = 1.5\n", "recipe.toml: [compress] prune amount"),
        ("[compress]\nregression_kd = 'l1'\n", "unknown regression distillation 'l1'"),
        ("[compress]\naugment = 1.5\n", "augment must be in [0, 1)"),
        ("[bench]\nseq_lens = [0]\n", "[bench] seq_lens must be a non-empty list"),
        ("[bench]\nbatch_sizes = 8\n", "[bench] batch_sizes must be a list of integers"),
        ("[teacher\n", "not valid TOML"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path, text, fragment):
    with pytest.raises(EdgeRNNError, match="^recipe.toml|recipe.toml: ") as error:
        load_recipe(_write(tmp_path, text))
    assert fragment in str(error.value)


def test_invalid_toml_names_the_line(tmp_path):
    with pytest.raises(EdgeRNNError, match=r"line 5"):
        load_recipe(_write(tmp_path, "[teacher]\nhidden = = 3\n"))


def test_data_section_is_required(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[teacher]\nhidden = 8\n")
    with pytest.raises(EdgeRNNError, match=r"r.toml: missing section \[data\]"):
        load_recipe(path)
    path.write_text("[data]\nsource = 'x'\n")
    with pytest.raises(EdgeRNNError, match=r"\[data\] missing key 'task'"):
        load_recipe(path)
