# Helpers of rules/heads.smk: the `heads:` configuration's cross-checks, its paths, and what it makes for the
# `all` target.

from clipxai.data import sources as _text_sources

HEADS = config.get("heads")

# Data set kind -> the on-disk format the `clipxai` verbs read (`--format`); shapes kinds are generated here or in
# rules/segmentation.smk, the others are real data sets.
HEADS_FORMAT = {
    "imagenet": "imagenet",
    "shapes-imagenet": "imagenet",
    "imagenet-seg": "imagenet-seg",
    "shapes-imagenet-seg": "imagenet-seg",
    "waterbirds": "waterbirds",
    "shapes-waterbirds": "waterbirds",
}
WATERBIRDS_ARCHIVE_ROOT = "waterbird_complete95_forest2water2"  # the folder the Stanford tarball unpacks to
# The Waterbirds protocol: accuracy on the test split, ablation means from the validation split (corrected mode).
WATERBIRDS_EVAL_SPLIT, WATERBIRDS_REFERENCE_SPLIT = "test", "val"


class _HeadsConfigError(Exception):
    pass


def _heads_config_error(key, expected):
    raise _HeadsConfigError(f"invalid configuration: heads.{key}: expected {expected}")


def _check_heads_config():
    """Cross-references the schema cannot express (names defined elsewhere, kinds that fit each protocol);
    the first problem raises _HeadsConfigError with one line naming the key."""
    for name in HEADS["models"]:
        if name not in MODELS:
            _heads_config_error("models", f"models defined under models, got {name!r}")
    for name, pool in HEADS["text_pools"].items():
        if ("source" in pool) == ("generate" in pool):
            _heads_config_error(f"text_pools.{name}", "exactly one of source (download) or generate")
        if "source" in pool and (
            pool["source"] not in _text_sources.SOURCES or _text_sources.SOURCES[pool["source"]].kind != "text"
        ):
            names = sorted(s.name for s in _text_sources.SOURCES.values() if s.kind == "text")
            _heads_config_error(f"text_pools.{name}.source", f"a text source ({', '.join(names)})")
    explain = HEADS["explain"]
    for name in explain["datasets"]:
        if name not in DATASETS or DATASETS[name]["kind"] not in HEADS_FORMAT:
            _heads_config_error("explain.datasets", f"data sets of kind {', '.join(HEADS_FORMAT)}, got {name!r}")
    for label, spec in explain["algorithms"].items():
        if spec["pool"] not in HEADS["text_pools"]:
            _heads_config_error(f"explain.algorithms.{label}.pool", "a pool under heads.text_pools")
    segmentation = HEADS.get("segmentation") or {"datasets": []}
    for name in segmentation["datasets"]:
        if name not in DATASETS or DATASETS[name]["kind"] not in ("imagenet-seg", "shapes-imagenet-seg"):
            _heads_config_error(
                "segmentation.datasets", f"data sets of kind imagenet-seg or shapes-imagenet-seg, " f"got {name!r}"
            )
    waterbirds = HEADS.get("waterbirds")
    if waterbirds:
        for name in waterbirds["datasets"]:
            if name not in DATASETS or DATASETS[name]["kind"] not in ("waterbirds", "shapes-waterbirds"):
                _heads_config_error(
                    "waterbirds.datasets", f"data sets of kind waterbirds or shapes-waterbirds, " f"got {name!r}"
                )
        if waterbirds["select_on"] not in explain["datasets"]:
            _heads_config_error("waterbirds.select_on", "one of heads.explain.datasets")
        if explain["algorithms"].get(waterbirds["select_with"], {}).get("algorithm") != "textspan":
            _heads_config_error("waterbirds.select_with", "the label of a textspan algorithm under explain.algorithms")
    neighbours = HEADS.get("neighbours")
    if neighbours:
        for name in neighbours["datasets"]:
            if name not in explain["datasets"]:
                _heads_config_error("neighbours.datasets", f"explained data sets, got {name!r}")
        if explain["algorithms"].get(neighbours_algorithm(), {}).get("algorithm") != "textspan":
            _heads_config_error("neighbours.algorithm", "the label of a textspan algorithm under explain.algorithms")
    for name, spec in DATASETS.items():
        if spec["kind"] in ("shapes-imagenet-seg", "shapes-waterbirds"):
            needed = ["image_size", "n_val"] + (["n_test"] if spec["kind"] == "shapes-waterbirds" else [])
            for key in needed:
                if key not in spec:
                    raise _HeadsConfigError(
                        f"invalid configuration: datasets.{name}.{key}: expected a number for "
                        f"a {spec['kind']} data set"
                    )


def neighbours_algorithm():
    """The textspan algorithm whose table names the neighbour figure's head (default: the first textspan one)."""
    chosen = (HEADS.get("neighbours") or {}).get("algorithm")
    if chosen:
        return chosen
    return next(
        (label for label, spec in HEADS["explain"]["algorithms"].items() if spec["algorithm"] == "textspan"), None
    )


if HEADS:
    try:
        _check_heads_config()
    except _HeadsConfigError as err:
        raise WorkflowError(str(err)) from None


# ---- paths (declared once) ----
def heads_data_root(dataset):
    """The folder the `clipxai` verbs read a data set from."""
    kind = DATASETS[dataset]["kind"]
    if kind == "imagenet":
        return DATASETS[dataset]["path"]
    if kind == "waterbirds":
        return f"{dataset_root(dataset)}/{WATERBIRDS_ARCHIVE_ROOT}"
    return dataset_root(dataset)


def heads_data_inputs(dataset):
    """Files a job reading the data set depends on (the user's ImageNet has none: the job checks it)."""
    kind, root = DATASETS[dataset]["kind"], dataset_root(dataset)
    return {
        "imagenet": [],
        "shapes-imagenet": [f"{root}/classnames.txt"],
        "imagenet-seg": [f"{root}/gtsegs_ijcv.mat"],
        "shapes-imagenet-seg": [f"{root}/gtsegs_ijcv.mat", f"{root}/gtsegs_ijcv_labels.json"],
        "waterbirds": [f"{root}/.waterbirds.json"],
        "shapes-waterbirds": [f"{root}/metadata.csv"],
    }[kind]


def heads_data_args(dataset):
    """`--data ... --format ...` (and ImageNet's devkit) of the verbs that open a data set."""
    spec = DATASETS[dataset]
    args = f"--data {shlex.quote(heads_data_root(dataset))} --format {HEADS_FORMAT[spec['kind']]}"
    if spec.get("devkit"):
        args += f" --devkit {shlex.quote(spec['devkit'])}"
    return args


def text_pool_path(pool):
    return f"resources/text/{pool}.txt"


def decomposition_dir(dataset, model, split, shard):
    return f"results/{dataset}/{model}/decomposition/{split}/{shard}"


def decomposition_done(dataset, model, split, shard):
    """A decomposition shard is complete when its meta.json exists (clipxai.models.decompose.write_shard)."""
    return f"{decomposition_dir(dataset, model, split, shard)}/meta.json"


def decomposition_shards(dataset, model, split):
    return [decomposition_done(dataset, model, split, s) for s in shards(dataset)]


def shard_dirs(files):
    """The shard directories of a list of meta.json files (what the verbs take)."""
    return " ".join(shlex.quote(f.rsplit("/", 1)[0]) for f in files)


def classifier_npy(dataset, model):
    return f"results/{dataset}/{model}/classifier.npy"


def heads_csv(dataset, model, algorithm):
    return f"results/{dataset}/{model}/heads/{algorithm}.csv"


def segmentation_maps(dataset, model, method, shard):
    return f"results/{dataset}/{model}/segmaps/{method}/{shard}.npz"


def segmentation_scores(dataset, model):
    return f"results/{dataset}/{model}/scores/imagenet_segmentation.csv"


def waterbirds_result(dataset, model, name):
    return f"results/{dataset}/{model}/waterbirds/{name}"


def explain_split(dataset):
    return DATASETS[dataset].get("split", "val")


def heads_section(name):
    return (HEADS or {}).get(name) or {}


def segmentation_methods():
    """label -> (registry name or "decomposition", parameters), in config order."""
    specs = {}
    for label, params in (heads_section("segmentation").get("methods") or {}).items():
        params = dict(params or {})
        specs[label] = (params.pop("method", label), params)
    return specs


# A segment_imagenet job maps one shard with every method: the old per-method budget (60 min) times the methods.
SEGMENT_IMAGENET_RUNTIME = 60 * max(1, len(segmentation_methods()))


def segmentation_method_json(label):
    name, params = segmentation_methods()[label]
    return shlex.quote(json.dumps({"method": name, "params": params}, sort_keys=True))


def names_of(kinds):
    """A wildcard regex matching exactly the configured data sets of these kinds."""
    names = [re.escape(d) for d, spec in DATASETS.items() if spec["kind"] in kinds]
    return "|".join(names) if names else "(?!)"


def pools_by(key):
    names = [re.escape(p) for p, spec in heads_section("text_pools").items() if key in spec]
    return "|".join(names) if names else "(?!)"


# ---- tables and the figure ----
def heads_explained():
    """(data set, model, algorithm label) of every head explanation."""
    if not HEADS:
        return []
    return [
        (d, m, a) for d in HEADS["explain"]["datasets"] for m in HEADS["models"] for a in HEADS["explain"]["algorithms"]
    ]


def segmentation_pairs_heads():
    if not HEADS or not segmentation_methods():
        return []
    return [(d, m) for d in heads_section("segmentation").get("datasets", []) for m in HEADS["models"]]


def waterbirds_pairs():
    return [(d, m) for d in heads_section("waterbirds").get("datasets", []) for m in (HEADS or {}).get("models", [])]


def neighbours_pairs():
    return [(d, m) for d in heads_section("neighbours").get("datasets", []) for m in (HEADS or {}).get("models", [])]


def neighbours_figure(dataset, model):
    return figure_path(f"head_neighbours_{dataset}_{model}")


def markdown_of(path):
    return path.rsplit(".", 1)[0] + ".md"


def heads_targets():
    """Everything rules/heads.smk makes for the `all` target: the tables (CSV, Markdown, sidecar) and the figures."""
    targets = []
    names = (
        (["heads_texts", "heads_accuracy"] if heads_explained() else [])
        + (["imagenet_segmentation"] if segmentation_pairs_heads() else [])
        + (["waterbirds_heads"] if waterbirds_pairs() else [])
    )
    for name in names:
        targets += [table_path(name), sidecar(table_path(name)), markdown_of(table_path(name))]
    for d, m in neighbours_pairs():
        targets += [neighbours_figure(d, m), sidecar(neighbours_figure(d, m))]
    return targets
