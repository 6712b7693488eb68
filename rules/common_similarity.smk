# Helpers of rules/similarity.smk: seed 001's similarity studies (their config is checked by
# clipxai.workflow.checks).

from clipxai.workflow.paths import similarity_npz

SIMILARITY = plan.section(config, "similarity")


def all_similarity():
    return plan.all_similarity(config)


def similarity_inputs(wc):
    return plan.similarity_inputs(config, wc.study, wc.model)


def similarity_spec(study):
    return plan.similarity_spec(config, study)
