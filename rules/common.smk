# Configuration, validation and the workflow's helpers: thin wrappers of clipxai.workflow (checks, paths, plan).

import json
import shlex

from jsonschema import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from clipxai.config import schema_error
from clipxai.errors import InputError
from clipxai.workflow import plan
from clipxai.workflow.checks import check_workflow
from clipxai.workflow.paths import (
    CHECKSUM_LOCK,
    WEIGHTS_CACHE,
    bench_path,
    dataset_root,
    figure_path,
    grounding_scores,
    grounding_summary,
    log_path,
    maps_npz,
    model_dir,
    png_json,
    report_dir,
    sidecar,
    table_path,
    zeroshot_csv,
)

# The schema (snakemake.utils.validate, filling defaults), then the cross-references (clipxai.workflow.checks): the
# first problem stops the run before any job with one line naming the key. Types are checked first
# (set_default=False): filling defaults assumes every section the schema gives defaults to is a mapping.
try:
    validate(config, "../src/clipxai/schemas/config.schema.yaml", set_default=False)
    validate(config, "../src/clipxai/schemas/config.schema.yaml", set_default=True)
except WorkflowError as err:
    if not isinstance(err.__context__, ValidationError):
        raise
    raise WorkflowError(f"invalid configuration: {schema_error(err.__context__, 'config')}") from None
try:
    check_workflow(config)
except InputError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    model=r"[A-Za-z0-9_\-]+",
    method=r"[A-Za-z0-9_\-]+",
    shard=r"\d+",


DATASETS = config["datasets"]
MODELS = config["models"]
METHODS = plan.method_specs(config)
GROUNDING = config["grounding"]


# ---- what jobs read and the verbs' arguments (paths: clipxai.workflow.paths) ----
def names_of_kind(kind):
    """A wildcard regex matching exactly the configured data sets of ``kind`` (nothing if there are none)."""
    return plan.regex_of(plan.datasets_of_kinds(config, (kind,)))


def models_of_kind(kind):
    return plan.regex_of(plan.models_of_kind(config, kind))


def dataset_inputs(dataset, split=None):
    """Every file a job reading ``dataset`` depends on (annotations, and stamps of extracted image folders)."""
    return plan.dataset_inputs(config, dataset, split)


def model_files(model):
    return plan.model_files(config, model)


def model_args(model):
    return plan.model_args(config, model)


def _workflow_error(function, *args):
    """``function(config, *args)``, its InputError (a bad config entry found while the DAG is built) as one line."""
    try:
        return function(config, *args)
    except InputError as err:
        raise WorkflowError(f"invalid configuration: {err}") from None


def source_url(name, prefix=""):
    """`--url URL` (and a mirror's checksum options) where config `sources:` names a mirror of a download."""
    return _workflow_error(plan.source_args, name, prefix)


def weights_args(model):
    """fetch-weights' `--pretrained TAG` (plus a `sources:` mirror of it) or `--checkpoint PATH`."""
    return _workflow_error(plan.weights_args, model)


# ---- tables and figures the report shows ----
# Whatever makes a table or a figure for the report declares it from its .smk file, e.g. with the output
#     csv=report_table("voc_segmentation"), meta=sidecar(table_path("voc_segmentation"))
# and the report job (rules/report.smk) collects every declared file, in declaration order; each file has a
# JSON sidecar beside it (title, caption, rule, command, inputs: clipxai.viz.provenance.write_sidecar).
REPORT_ITEMS = plan.ReportItems()
REPORT_TABLES = REPORT_ITEMS.tables
REPORT_FIGURES = REPORT_ITEMS.figures


def report_table(name):
    """Declare ``results/tables/<name>.csv`` (no wildcards) as shown in the report; returns its path."""
    return REPORT_ITEMS.declare_table(name)


def report_figure(name):
    """Declare ``results/figures/<name>.png`` (no wildcards) as shown in the report; returns its path."""
    return REPORT_ITEMS.declare_figure(name)


def shards(dataset):
    return plan.shards(config, dataset)


# A ground job runs every grounding method over one shard: the old per-method budget (60 min) times the methods.
GROUND_RUNTIME = 60 * len(METHODS)


def scoring_pairs(dataset, model):
    return plan.scoring_pairs(config, dataset, model)


def method_json(method):
    return plan.method_json(config, method)


def all_summaries():
    return plan.all_summaries(config)


def all_zeroshot():
    return plan.all_zeroshot(config)


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
