"""Verbs of the ``clipxai`` command, one module each (see clipxai.cli)."""

# Order is the order of `clipxai --help`, which follows the data flow of the workflow.
COMMAND_MODULES: list[str] = [
    "make_shapes",
    "download",
    "fetch_weights",
    "train_toy",
    # "attribute",  (added when its module lands)
    "decompose",
    "ground",
    "score_grounding",
    "zeroshot_shapes",
    "explain_heads",
    "table_grounding",
    "figure_grounding",
    "report",
]
