# Helpers of rules/faithfulness.smk: what it reads and makes (its config is checked by clipxai.workflow.checks).

from clipxai.workflow.paths import faithfulness_entries

FAITHFULNESS = plan.section(config, "faithfulness")
# the floor every method is compared with: the configured method whose registry name is `random`
FAITHFULNESS_RANDOM = plan.faithfulness_random(config)


# A faithfulness job curves every method's maps: the old per-method budget (60 min) times the methods.
FAITHFULNESS_RUNTIME = 60 * max(1, len(METHODS))


def all_faithfulness_entries():
    return plan.all_faithfulness_entries(config)


def faithfulness_pairs(dataset, model):
    return plan.faithfulness_pairs(config, dataset, model)
