"""Recipes: a whole pipeline (teacher -> compress -> bundle) in one TOML file, resumable.

``parse`` reads and checks the TOML, ``run`` runs it stage by stage, ``state`` records which
stages finished so a rerun skips them.

Example::

    from edgernn.recipe import load_recipe, run_recipe

    run_recipe(load_recipe("pipelines/sentiment_bilstm.toml"), "runs/demo")
"""

from edgernn.recipe.parse import Recipe, load_recipe
from edgernn.recipe.run import run_recipe

__all__ = ["Recipe", "load_recipe", "run_recipe"]
