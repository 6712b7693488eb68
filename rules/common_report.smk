# Helpers of rules/report.smk: what the report shows and checksums, and the saliency figures' shared parts.

REPORT_CONFIG = config.get("report", {})
# absent: the first grounding model; an empty list: no saliency figures (e.g. to keep a test run short)
SALIENCY_MODELS = REPORT_CONFIG.get("saliency_models", GROUNDING["models"][:1])
for _name in SALIENCY_MODELS:
    if _name not in MODELS:
        raise WorkflowError(f"invalid configuration: report.saliency_models: {_name!r} is not a model under models")


def all_entry_scores(datasets=None):
    """Per-entry grounding scores of every (data set, model, method); only ``datasets`` if given."""
    return [
        grounding_scores(d, m, meth)
        for d in (GROUNDING["datasets"] if datasets is None else datasets)
        for m in GROUNDING["models"]
        for meth in METHODS
    ]


def binding_datasets():
    """Grounding data sets of the shapes world: their phrases name "<colour> <shape>" objects (the binding table)."""
    return [d for d in GROUNDING["datasets"] if DATASETS[d]["kind"] == "shapes"]


def figure_methods():
    """The methods shown side by side in the qualitative figure (those configured, in config order)."""
    return [m for m in METHODS if METHODS[m][0] != "random"]


def data_split(dataset):
    return DATASETS[dataset].get("split", "val")


# Seed 001's saliency figures: a few images of a grounding data set explained by one model (report.saliency_models).
def saliency_rule_outputs(kind):
    name = f"saliency_{kind}_{{dataset}}_{{model}}"
    return {
        "png": report(
            figure_path(name),
            caption="../report/snakemake/figure.rst",
            category="Figures",
            subcategory="{dataset} / {model}",
        ),
        "pdf": figure_path(name).replace(".png", ".pdf"),
        "meta": sidecar(figure_path(name)),
    }


SALIENCY_PARAMS = dict(
    root=lambda wc: dataset_root(wc.dataset),
    split=lambda wc: data_split(wc.dataset),
    model=lambda wc: model_args(wc.model),
    n=REPORT_CONFIG.get("saliency_images", 3),
    label=lambda wc: f"{wc.dataset} / {wc.model}",
)


def saliency_inputs(wc):
    return dataset_inputs(wc.dataset) + model_files(wc.model)


def report_checksummed_inputs(wc=None):
    """The data and model files the report checksums: what every grounding data set and model job depended on."""
    files = []
    for d in GROUNDING["datasets"]:
        files += dataset_inputs(d)
    for m in dict.fromkeys(GROUNDING["models"] + SALIENCY_MODELS):
        files += model_files(m)
    return list(dict.fromkeys(files))


def report_checksummed_folders():
    """Data set and toy-model folders: every file in them is checksummed (open_clip weights: their stamp above)."""
    folders = [dataset_root(d) for d in GROUNDING["datasets"]]
    return folders + [
        model_dir(m) for m in dict.fromkeys(GROUNDING["models"] + SALIENCY_MODELS) if MODELS[m]["kind"] == "toy"
    ]
