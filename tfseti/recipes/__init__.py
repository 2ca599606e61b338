"""The recipes shipped with tfseti: one TOML file per recipe (package data).

``python -m tfseti.train --config NAME`` reads ``NAME.toml`` from here (``tfseti.config``);
``tfseti.config.recipe_names()`` lists them.
"""
