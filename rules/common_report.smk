# Helpers of rules/report.smk: what the report shows and checksums, and the saliency figures' shared parts.

REPORT_CONFIG = config.get("report", {})
# absent: the first grounding model; an empty list: no saliency figures (e.g. to keep a test run short)
SALIENCY_MODELS = plan.saliency_models(config)


def all_entry_scores(datasets=None):
    """Per-entry grounding scores of every (data set, model, method); only ``datasets`` if given."""
    return plan.all_entry_scores(config, datasets)


def binding_datasets():
    """Grounding data sets of the shapes world: their phrases name "<colour> <shape>" objects (the binding table)."""
    return plan.shapes_grounding_datasets(config)


def figure_methods():
    return plan.figure_methods(config)


def data_split(dataset):
    return plan.data_split(config, dataset)


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
    return plan.report_checksummed_inputs(config)


def report_checksummed_folders():
    return plan.report_checksummed_folders(config)
