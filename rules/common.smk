# Configuration, validation and the one place every path of the workflow is declared.

import json
import re
import shlex

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from clipxai.config import check_references, method_specs, schema_error
from clipxai.errors import InputError

# The schema (snakemake.utils.validate, filling defaults), then the cross-references: the first problem stops the
# run before any job with one line naming the key. Types are checked first (set_default=False): filling defaults
# assumes every section the schema gives defaults to is a mapping.
try:
    validate(config, "../src/clipxai/schemas/config.schema.yaml", set_default=False)
    validate(config, "../src/clipxai/schemas/config.schema.yaml", set_default=True)
except WorkflowError as err:
    if not isinstance(err.__context__, ValidationError):
        raise
    raise WorkflowError(f"invalid configuration: {schema_error(err.__context__, 'config')}") from None
try:
    check_references(config, "config")
except InputError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    model=r"[A-Za-z0-9_\-]+",
    method=r"[A-Za-z0-9_\-]+",
    shard=r"\d+",


DATASETS = config["datasets"]
MODELS = config["models"]
METHODS = method_specs(config)
GROUNDING = config["grounding"]
# Checksums recorded at the first download of files whose publishers give none (committed: later runs verify).
CHECKSUM_LOCK = "config/checksums.lock.yaml"


# ---- paths (declared once) ----
def dataset_root(dataset):
    return f"resources/data/{dataset}"


def png_json(dataset, split):
    return f"{dataset_root(dataset)}/annotations/png_coco_{split}2017.json"


def names_of_kind(kind):
    """A wildcard regex matching exactly the configured data sets of ``kind`` (nothing if there are none)."""
    names = [re.escape(d) for d, spec in DATASETS.items() if spec["kind"] == kind]
    return "|".join(names) if names else "(?!)"


def models_of_kind(kind):
    names = [re.escape(m) for m, spec in MODELS.items() if spec["kind"] == kind]
    return "|".join(names) if names else "(?!)"


def dataset_inputs(dataset, split=None):
    """Every file a job reading ``dataset`` depends on (annotations, and stamps of extracted image folders)."""
    split = split or DATASETS[dataset].get("split", "val")
    files = [png_json(dataset, split)]
    if DATASETS[dataset]["kind"] == "png":
        files += [
            f"{dataset_root(dataset)}/.coco_val2017_images.json",
            f"{dataset_root(dataset)}/.coco_panoptic_annotations.json",
        ]
    return files


def model_dir(model):
    return f"resources/models/{model}"


def model_files(model):
    """What a model's jobs depend on: the trained toy weights, or the stamp of fetched open_clip weights."""
    if MODELS[model]["kind"] == "toy":
        return [f"{model_dir(model)}/open_clip_config.json", f"{model_dir(model)}/open_clip_model.safetensors"]
    return [f"{model_dir(model)}/weights.json"]


def model_args(model):
    """The `--model ... --pretrained ...` arguments of every clipxai verb that loads a model."""
    spec = MODELS[model]
    if spec["kind"] == "toy":
        return f"--model {shlex.quote(model_dir(model))}"
    # published weights: the file fetch-weights recorded in the stamp (verified on load), never a cache lookup
    return f"--model {shlex.quote(spec['name'])} --checkpoint {shlex.quote(model_files(model)[0])}"


def maps_npz(dataset, model, method, shard):
    return f"results/{dataset}/{model}/maps/{method}/{shard}.npz"


def grounding_scores(dataset, model, method):
    return f"results/{dataset}/{model}/scores/grounding/{method}.csv"


def grounding_summary(dataset, model, method):
    return f"results/{dataset}/{model}/scores/grounding/{method}_summary.csv"


def source_url(name, prefix=""):
    """`--url URL` (and a mirror's own `--sha256/--md5/--size`, or `--no-checksum`) where config `sources:` names a
    lab mirror or a local copy of a download, else nothing (clipxai.data.sources.download_arguments); ``prefix``
    renames the options (`--tokenizer-url ...` of fetch-weights)."""
    from clipxai.data.sources import download_arguments

    try:
        args = download_arguments(name, config.get("sources", {}).get(name))
    except InputError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None
    return " ".join(shlex.quote(f"--{prefix}{a[2:]}" if a.startswith("--") else a) for a in args)


# Where fetch-weights puts published weights (hub files and URL downloads alike): inside the workflow, so compute
# nodes read exactly the files the stamps record, never a per-user cache.
WEIGHTS_CACHE = "resources/weights"


def weights_args(model):
    """fetch-weights' `--pretrained TAG` (plus a `sources:` mirror of it) or `--checkpoint PATH` (config `checkpoint:`,
    which wins over a `pretrained` tag given with it)."""
    spec = MODELS[model]
    if spec.get("checkpoint"):
        # a local file wins; a `pretrained` tag beside it only names what the file stands for (a lab's copy)
        return f"--checkpoint {shlex.quote(spec['checkpoint'])}"
    if not spec.get("pretrained"):
        raise WorkflowError(
            f"invalid configuration: models.{model}: expected `pretrained` (an open_clip tag or a "
            "catalogued checkpoint) or `checkpoint` (a local file or model folder)"
        )
    return f"--pretrained {shlex.quote(spec['pretrained'])} {source_url(spec['pretrained'])}".strip()


def zeroshot_csv(dataset, model):
    return f"results/{dataset}/{model}/zeroshot.csv"


def report_dir():
    """The report folder: index.html with the figures and tables it shows (self-contained: zip it, mail it)."""
    return "results/report"


def report_html():
    return f"{report_dir()}/index.html"


# ---- tables and figures the report shows ----
# Whatever makes a table or a figure for the report declares it from its .smk file, e.g. with the output
#     csv=report_table("voc_segmentation"), meta=sidecar(table_path("voc_segmentation"))
# and the report job (rules/report.smk) collects every declared file, in declaration order; each file has a
# JSON sidecar beside it (title, caption, rule, command, inputs: clipxai.viz.provenance.write_sidecar).
REPORT_TABLES = []
REPORT_FIGURES = []


def table_path(name):
    return f"results/tables/{name}.csv"


def figure_path(name):
    return f"results/figures/{name}.png"


def sidecar(path):
    """The JSON sidecar beside a table (.csv) or figure (.png)."""
    return path.rsplit(".", 1)[0] + ".json"


def report_table(name):
    """Declare ``results/tables/<name>.csv`` (no wildcards) as shown in the report; returns its path."""
    path = table_path(name)
    if path not in REPORT_TABLES:
        REPORT_TABLES.append(path)
    return path


def report_figure(name):
    """Declare ``results/figures/<name>.png`` (no wildcards) as shown in the report; returns its path."""
    path = figure_path(name)
    if path not in REPORT_FIGURES:
        REPORT_FIGURES.append(path)
    return path


def shards(dataset):
    return range(DATASETS[dataset]["shards"])


# A ground job runs every grounding method over one shard: the old per-method budget (60 min) times the methods.
GROUND_RUNTIME = 60 * len(METHODS)


def scoring_pairs(dataset, model):
    """score-grounding's `--maps/--out/--summary LABEL=PATH` of every grounding method of (dataset, model)."""
    maps = [f"{m}={maps_npz(dataset, model, m, s)}" for m in METHODS for s in shards(dataset)]
    out = [f"{m}={grounding_scores(dataset, model, m)}" for m in METHODS]
    summary = [f"{m}={grounding_summary(dataset, model, m)}" for m in METHODS]
    return " ".join(
        f"--{option} {' '.join(shlex.quote(value) for value in values)}"
        for option, values in (("maps", maps), ("out", out), ("summary", summary))
    )


def method_json(method):
    """A method's registry name and parameters, passed to the CLI as one JSON argument."""
    name, params = METHODS[method]
    return shlex.quote(json.dumps({"method": name, "params": params}, sort_keys=True))


def log_path(rule_name, *parts):
    return f"logs/{rule_name}/{'/'.join(parts)}.log"


def bench_path(rule_name, *parts):
    return f"benchmarks/{rule_name}/{'/'.join(parts)}.tsv"


def all_summaries():
    return [
        grounding_summary(d, m, meth) for d in GROUNDING["datasets"] for m in GROUNDING["models"] for meth in METHODS
    ]


def all_zeroshot():
    return [
        zeroshot_csv(d, m)
        for d in GROUNDING["datasets"]
        if DATASETS[d]["kind"] == "shapes"
        for m in GROUNDING["models"]
    ]


# ---- cluster resources ----
# What a job needs from a cluster, declared in the rules as generic resources only (threads, mem_mb, runtime,
# gpu); profiles/slurm maps them onto a site's partitions, account and QOS. A GPU step says so with the one resource
# line `gpu=gpu_request` (ground, segment_voc, zeroshot_classify, decompose_dataset, zeroshot_classifier,
# segment_imagenet).
def gpu_request(wildcards):
    """GPUs a job of a GPU step asks for: one, unless the configuration pins the workflow to the CPU.

    With `device: auto` (the default) or `cuda`, each job is given one GPU and the SLURM profile sends it to a
    GPU partition; with `device: cpu` it asks for none and runs in a CPU partition (nothing would use the GPU).
    """
    return 0 if config["device"] == "cpu" else 1
