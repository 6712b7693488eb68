# Helpers of rules/similarity.smk: seed 001's similarity studies, their configuration checks and paths.

SIMILARITY = config.get("similarity") or {"models": [], "studies": {}}
for _m in SIMILARITY.get("models", []):
    if _m not in MODELS:
        raise WorkflowError(f"invalid configuration: similarity.models: {_m!r} is not a model under models")
if SIMILARITY.get("models") and SIMILARITY.get("method", "rollout-last-grad") not in METHODS:
    raise WorkflowError(
        f"invalid configuration: similarity.method: {SIMILARITY.get('method')!r} is not a label "
        "under grounding.methods"
    )
for _s, _spec in (SIMILARITY.get("studies") or {}).items():
    if _spec["kind"] == "shapes" and DATASETS.get(_spec.get("dataset"), {}).get("kind") != "shapes-imagenet":
        raise WorkflowError(
            f"invalid configuration: similarity.studies.{_s}.dataset: a data set of kind "
            "shapes-imagenet (single-object images)"
        )


# ---- paths (declared once) ----
def similarity_npz(study, model):
    return f"results/similarity/{study}/{model}.npz"


def all_similarity():
    return [similarity_npz(s, m) for s in SIMILARITY.get("studies", {}) for m in SIMILARITY.get("models", [])]


def similarity_inputs(wc):
    """The workflow's files a study reads: a shapes study's data set (ArtEmis / AffectNet are the user's, checked
    by the job itself) and the model."""
    spec = SIMILARITY["studies"][wc.study]
    data = [f"{dataset_root(spec['dataset'])}/classnames.txt"] if spec["kind"] == "shapes" else []
    return data + model_files(wc.model)


def similarity_spec(study):
    """The study as the verb's --spec JSON: its kind, data paths and prompt template."""
    spec = dict(SIMILARITY["studies"][study])
    if spec["kind"] == "shapes":
        spec["data"] = dataset_root(spec.pop("dataset"))
    return shlex.quote(json.dumps(spec, sort_keys=True))
