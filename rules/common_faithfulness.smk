# Helpers of rules/faithfulness.smk: configuration checks, paths, and what it makes for the report.

FAITHFULNESS = config.get("faithfulness") or {"models": []}
for _m in FAITHFULNESS.get("models", []):
    if _m not in GROUNDING["models"]:
        raise WorkflowError(
            f"invalid configuration: faithfulness.models: {_m!r} is not one of grounding.models "
            "(the curves perturb the pairs whose grounding maps were made)"
        )
# the floor every method is compared with: the configured method whose registry name is `random`
FAITHFULNESS_RANDOM = next((m for m, (name, _) in METHODS.items() if name == "random"), "random")


# A faithfulness job curves every method's maps: the old per-method budget (60 min) times the methods.
FAITHFULNESS_RUNTIME = 60 * max(1, len(METHODS))


# ---- paths (declared once) ----
def faithfulness_entries(dataset, model, method):
    return f"results/{dataset}/{model}/scores/faithfulness/{method}.csv"


def all_faithfulness_entries():
    return [
        faithfulness_entries(d, m, meth)
        for d in GROUNDING["datasets"]
        for m in FAITHFULNESS.get("models", [])
        for meth in METHODS
    ]


def faithfulness_pairs(dataset, model):
    """faithfulness' `--maps/--out LABEL=PATH` of every grounding method of (dataset, model)."""
    maps = [f"{m}={maps_npz(dataset, model, m, s)}" for m in METHODS for s in shards(dataset)]
    out = [f"{m}={faithfulness_entries(dataset, model, m)}" for m in METHODS]
    return " ".join(
        f"--{option} {' '.join(shlex.quote(value) for value in values)}"
        for option, values in (("maps", maps), ("out", out))
    )
