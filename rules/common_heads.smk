# Helpers of rules/heads.smk: its paths, what it reads and what it makes for the `all` target (its config is
# checked by clipxai.workflow.checks).

from clipxai.data.kinds import KINDS, kinds_serving
from clipxai.workflow.paths import (
    classifier_npy,
    decomposition_dir,
    decomposition_done,
    heads_csv,
    markdown_of,
    neighbours_figure,
    segmentation_maps,
    segmentation_scores,
    text_pool_path,
    waterbirds_result,
)

HEADS = config.get("heads")

# Data set kind -> the on-disk format the `clipxai` verbs read (`--format`), for every kind the heads explain
# (clipxai.data.kinds).
HEADS_FORMAT = {kind: KINDS[kind].format for kind in kinds_serving("heads-explain")}
WATERBIRDS_ARCHIVE_ROOT = KINDS["waterbirds"].archive_root  # the folder the Stanford tarball unpacks to
WATERBIRDS_EVAL_SPLIT, WATERBIRDS_REFERENCE_SPLIT = plan.WATERBIRDS_EVAL_SPLIT, plan.WATERBIRDS_REFERENCE_SPLIT


def neighbours_algorithm():
    """The textspan algorithm whose table names the neighbour figure's head (default: the first textspan one)."""
    return plan.neighbours_algorithm(config)


def heads_data_root(dataset):
    """The folder the `clipxai` verbs read a data set from."""
    return plan.data_root(config, dataset)


def heads_data_inputs(dataset):
    """Files a job reading the data set depends on (the user's ImageNet has none: the job checks it)."""
    return plan.kind_inputs(config, dataset)


def heads_data_args(dataset):
    return plan.heads_data_args(config, dataset)


def decomposition_shards(dataset, model, split):
    return [decomposition_done(dataset, model, split, s) for s in shards(dataset)]


def shard_dirs(files):
    """The shard directories of a list of meta.json files (what the verbs take)."""
    return " ".join(shlex.quote(f.rsplit("/", 1)[0]) for f in files)


def explain_split(dataset):
    return plan.data_split(config, dataset)


def heads_section(name):
    return plan.heads_section(config, name)


def segmentation_methods():
    """label -> (registry name or "decomposition", parameters), in config order."""
    return plan.segmentation_methods(config)


# A segment_imagenet job maps one shard with every method: the old per-method budget (60 min) times the methods.
SEGMENT_IMAGENET_RUNTIME = 60 * max(1, len(segmentation_methods()))


def segmentation_method_json(label):
    return plan.segmentation_method_json(config, label)


def names_of(kinds):
    """A wildcard regex matching exactly the configured data sets of these kinds."""
    return plan.regex_of(plan.datasets_of_kinds(config, kinds))


def pools_by(key):
    return plan.regex_of(plan.text_pools_with(config, key))


# ---- tables and the figure ----
def heads_explained():
    """(data set, model, algorithm label) of every head explanation."""
    return plan.heads_explained(config)


def segmentation_pairs_heads():
    return plan.segmentation_pairs_heads(config)


def waterbirds_pairs():
    return plan.waterbirds_pairs(config)


def neighbours_pairs():
    return plan.neighbours_pairs(config)


def heads_targets():
    """Everything rules/heads.smk makes for the `all` target: the tables (CSV, Markdown, sidecar) and the figures."""
    return plan.heads_targets(config)
