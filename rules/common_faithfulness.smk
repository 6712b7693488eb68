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
