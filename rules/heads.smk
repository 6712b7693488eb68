# Inside the image tower (TextSpan, seed 004; PROTOCOLS.md D): residual decompositions of ViT models per shard,
# attention heads described by texts (TextSpan, principal components), ImageNet-segmentation from the decomposition
# beside the attribution methods, Waterbirds worst-group accuracy with "place" heads mean-ablated, and a
# nearest-neighbour figure in one head's subspace.
#
# Config: `heads:` (schemas/config.schema.yaml). Data set kinds read here: imagenet / shapes-imagenet (rules/
# segmentation.smk makes or checks them), imagenet-seg / shapes-imagenet-seg, waterbirds / shapes-waterbirds
# (downloaded or generated below). Text pools are downloaded (the papers' pools) or generated (the shapes world's).

from clipxai.data import sources as _text_sources

HEADS = config.get("heads")

# Data set kind -> the on-disk format the `clipxai` verbs read (`--format`); shapes kinds are generated here or in
# rules/segmentation.smk, the others are real data sets.
HEADS_FORMAT = {"imagenet": "imagenet", "shapes-imagenet": "imagenet", "imagenet-seg": "imagenet-seg",
                "shapes-imagenet-seg": "imagenet-seg", "waterbirds": "waterbirds", "shapes-waterbirds": "waterbirds"}
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
        if "source" in pool and (pool["source"] not in _text_sources.SOURCES
                                 or _text_sources.SOURCES[pool["source"]].kind != "text"):
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
            _heads_config_error("segmentation.datasets", f"data sets of kind imagenet-seg or shapes-imagenet-seg, "
                                f"got {name!r}")
    waterbirds = HEADS.get("waterbirds")
    if waterbirds:
        for name in waterbirds["datasets"]:
            if name not in DATASETS or DATASETS[name]["kind"] not in ("waterbirds", "shapes-waterbirds"):
                _heads_config_error("waterbirds.datasets", f"data sets of kind waterbirds or shapes-waterbirds, "
                                    f"got {name!r}")
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
                    raise _HeadsConfigError(f"invalid configuration: datasets.{name}.{key}: expected a number for "
                                            f"a {spec['kind']} data set")


def neighbours_algorithm():
    """The textspan algorithm whose table names the neighbour figure's head (default: the first textspan one)."""
    chosen = (HEADS.get("neighbours") or {}).get("algorithm")
    if chosen:
        return chosen
    return next((label for label, spec in HEADS["explain"]["algorithms"].items()
                 if spec["algorithm"] == "textspan"), None)


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
    return {"imagenet": [],
            "shapes-imagenet": [f"{root}/classnames.txt"],
            "imagenet-seg": [f"{root}/gtsegs_ijcv.mat"],
            "shapes-imagenet-seg": [f"{root}/gtsegs_ijcv.mat", f"{root}/gtsegs_ijcv_labels.json"],
            "waterbirds": [f"{root}/.waterbirds.json"],
            "shapes-waterbirds": [f"{root}/metadata.csv"]}[kind]


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


# ---- data: the shapes world in the two formats, the real sets downloaded (head node: compute nodes may have no
# internet), text pools ----
localrules:
    download_imagenet_seg,
    download_waterbirds,
    download_text_pool,
    generate_text_pool,
    table_heads,
    table_imagenet_seg,
    table_waterbirds,
    figure_neighbours,


rule make_shapes_imagenet_seg:
    wildcard_constraints:
        dataset=names_of(("shapes-imagenet-seg",)),
    output:
        mat=f"{dataset_root('{dataset}')}/gtsegs_ijcv.mat",
        labels=f"{dataset_root('{dataset}')}/gtsegs_ijcv_labels.json",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
    log:
        log_path("make_shapes_imagenet_seg", "{dataset}"),
    benchmark:
        bench_path("make_shapes_imagenet_seg", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{CLIPXAI} make-shapes --out {params.root} --format imagenet-seg --seed {config[seed]}"
        " --n-val {params.spec[n_val]} --image-size {params.spec[image_size]} 2> {log}"


rule make_shapes_waterbirds:
    wildcard_constraints:
        dataset=names_of(("shapes-waterbirds",)),
    output:
        f"{dataset_root('{dataset}')}/metadata.csv",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        # no train split is needed: the model is used zero-shot
        n_train=lambda wc: DATASETS[wc.dataset].get("n_train", 0),
    log:
        log_path("make_shapes_waterbirds", "{dataset}"),
    benchmark:
        bench_path("make_shapes_waterbirds", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{CLIPXAI} make-shapes --out {params.root} --format waterbirds --seed {config[seed]}"
        " --n-train {params.n_train} --n-val {params.spec[n_val]} --n-test {params.spec[n_test]}"
        " --image-size {params.spec[image_size]} 2> {log}"


rule download_imagenet_seg:
    wildcard_constraints:
        dataset=names_of(("imagenet-seg",)),
    output:
        f"{dataset_root('{dataset}')}/gtsegs_ijcv.mat",
    params:
        url=lambda wc: source_url("imagenet_seg_gtsegs"),
    log:
        log_path("download", "{dataset}", "imagenet_seg_gtsegs"),
    benchmark:
        bench_path("download", "{dataset}", "imagenet_seg_gtsegs")
    shell:
        "{CLIPXAI} download imagenet_seg_gtsegs {params.url} --dest {output} --lock {CHECKSUM_LOCK} 2> {log}"


rule download_waterbirds:
    wildcard_constraints:
        dataset=names_of(("waterbirds",)),
    output:
        stamp=f"{dataset_root('{dataset}')}/.waterbirds.json",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("waterbirds"),
    log:
        log_path("download", "{dataset}", "waterbirds"),
    benchmark:
        bench_path("download", "{dataset}", "waterbirds")
    shell:
        "{CLIPXAI} download waterbirds {params.url} --dest resources/downloads/{WATERBIRDS_ARCHIVE_ROOT}.tar.gz"
        " --extract-to {params.root} --remove-archive --lock {CHECKSUM_LOCK} --stamp {output.stamp} 2> {log}"


rule download_text_pool:
    wildcard_constraints:
        pool=pools_by("source"),
    output:
        text_pool_path("{pool}"),
    params:
        source=lambda wc: HEADS["text_pools"][wc.pool]["source"],
        url=lambda wc: source_url(HEADS["text_pools"][wc.pool]["source"]),
    log:
        log_path("download", "text", "{pool}"),
    benchmark:
        bench_path("download", "text", "{pool}")
    shell:
        "{CLIPXAI} download {params.source} {params.url} --dest {output} --lock {CHECKSUM_LOCK} 2> {log}"


rule generate_text_pool:
    wildcard_constraints:
        pool=pools_by("generate"),
    output:
        text_pool_path("{pool}"),
    params:
        world=lambda wc: HEADS["text_pools"][wc.pool]["generate"],
    log:
        log_path("generate_text_pool", "{pool}"),
    benchmark:
        bench_path("generate_text_pool", "{pool}")
    shell:
        "{CLIPXAI} text-pool --world {params.world} --out {output} 2> {log}"


# ---- the decomposition: one GPU job per (data set, model, split, shard) ----
rule decompose_dataset:
    wildcard_constraints:
        dataset=names_of(tuple(HEADS_FORMAT)),
        split="train|val|test",
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        decomposition_done("{dataset}", "{model}", "{split}", "{shard}"),
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        out=lambda wc: decomposition_dir(wc.dataset, wc.model, wc.split, wc.shard),
        model=lambda wc: model_args(wc.model),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        spatial=",".join(str(layer) for layer in heads_section("spatial_layers") or []) if HEADS else "",
    log:
        log_path("decompose_dataset", "{dataset}", "{model}", "{split}", "{shard}"),
    benchmark:
        bench_path("decompose_dataset", "{dataset}", "{model}", "{split}", "{shard}")
    threads: config["threads"]
    resources:
        mem_mb=16000,
        runtime=120,
        gpu=gpu_request,
    shell:
        "{CLIPXAI} decompose-dataset {params.data} --split {wildcards.split} {params.model}"
        " --shard {wildcards.shard} --shards {params.shards} --max-images {params.max_images}"
        " --spatial-layers={params.spatial:q} --batch-size {config[batch_size]} --device {config[device]}"
        " --threads {threads} --out {params.out} 2> {log}"


rule zeroshot_classifier:
    wildcard_constraints:
        dataset=names_of(tuple(HEADS_FORMAT)),
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        weights=classifier_npy("{dataset}", "{model}"),
        classes=classifier_npy("{dataset}", "{model}").replace(".npy", ".json"),
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        model=lambda wc: model_args(wc.model),
        templates=heads_section("templates") or "openai",
    log:
        log_path("zeroshot_classifier", "{dataset}", "{model}"),
    benchmark:
        bench_path("zeroshot_classifier", "{dataset}", "{model}")
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=gpu_request,
    shell:
        "{CLIPXAI} zeroshot-classifier {params.data} {params.model} --templates {params.templates}"
        " --device {config[device]} --out {output.weights} 2> {log}"


# ---- heads described by texts ----
rule explain_heads:
    input:
        shards=lambda wc: decomposition_shards(wc.dataset, wc.model, explain_split(wc.dataset)),
        pool=lambda wc: text_pool_path(HEADS["explain"]["algorithms"][wc.algorithm]["pool"]),
        classifier=lambda wc: classifier_npy(wc.dataset, wc.model),
        model=lambda wc: model_files(wc.model),
    output:
        csv=heads_csv("{dataset}", "{model}", "{algorithm}"),
        summary=heads_csv("{dataset}", "{model}", "{algorithm}").replace(".csv", ".json"),
    params:
        shards=lambda wc, input: shard_dirs(input.shards),
        model=lambda wc: model_args(wc.model),
        algorithm=lambda wc: HEADS["explain"]["algorithms"][wc.algorithm]["algorithm"],
        layers=lambda wc: HEADS["explain"]["layers"],
        m=lambda wc: HEADS["explain"]["algorithms"][wc.algorithm].get("m", HEADS["explain"]["m"]),
        options=lambda wc: " ".join(
            f"--{key} {HEADS['explain']['algorithms'][wc.algorithm][key]}" for key in ("rank", "mode")
            if key in HEADS["explain"]["algorithms"][wc.algorithm]),
    log:
        log_path("explain_heads", "{dataset}", "{model}", "{algorithm}"),
    benchmark:
        bench_path("explain_heads", "{dataset}", "{model}", "{algorithm}")
    threads: config["threads"]
    resources:
        # the verb holds every explained image's head terms in memory: ViT-H on ImageNet val needs ~110 GB
        mem_mb=lambda wc: HEADS["explain"]["mem_mb"],
        runtime=240,
    shell:
        "{CLIPXAI} explain-heads --decomposition {params.shards} --texts {input.pool} {params.model} --device cpu"
        " --algorithm {params.algorithm} --layers {params.layers} --m {params.m} {params.options}"
        " --classifier {input.classifier} --out {output.csv} --accuracy-out {output.summary} 2> {log}"


# ---- ImageNet segmentation: maps per (method, shard) on the GPU, scored per (data set, model) ----
rule segment_imagenet:
    wildcard_constraints:
        dataset=names_of(("imagenet-seg", "shapes-imagenet-seg")),
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
        classifier=lambda wc: classifier_npy(wc.dataset, wc.model),
    output:
        segmentation_maps("{dataset}", "{model}", "{method}", "{shard}"),
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
        model=lambda wc: model_args(wc.model),
        method=lambda wc: segmentation_method_json(wc.method),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
    log:
        log_path("segment_imagenet", "{dataset}", "{model}", "{method}", "{shard}"),
    benchmark:
        bench_path("segment_imagenet", "{dataset}", "{model}", "{method}", "{shard}")
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request,
    shell:
        "{CLIPXAI} segment-imagenet --data {params.root} {params.model} --classifier {input.classifier}"
        " --method {params.method} --label {wildcards.method} --shard {wildcards.shard} --shards {params.shards}"
        " --max-images {params.max_images} --seed {config[seed]} --batch-size {config[batch_size]}"
        " --device {config[device]} --threads {threads} --out {output} 2> {log}"


rule score_segmentation:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        maps=lambda wc: [segmentation_maps(wc.dataset, wc.model, method, s) for method in segmentation_methods()
                         for s in shards(wc.dataset)],
    output:
        segmentation_scores("{dataset}", "{model}"),
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
    log:
        log_path("score_segmentation", "{dataset}", "{model}"),
    benchmark:
        bench_path("score_segmentation", "{dataset}", "{model}")
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{CLIPXAI} score-segmentation --data {params.root} --maps {input.maps} --out {output} 2> {log}"


# ---- Waterbirds: heads chosen by their texts, mean-ablated ----
rule select_heads:
    input:
        lambda wc: heads_csv(HEADS["waterbirds"]["select_on"], wc.model, HEADS["waterbirds"]["select_with"]),
    output:
        waterbirds_result("{dataset}", "{model}", "selection.csv"),
    params:
        words=lambda wc: " ".join(shlex.quote(w) for w in HEADS["waterbirds"]["words"]),
        min_texts=lambda wc: HEADS["waterbirds"]["min_texts"],
        max_heads=lambda wc: HEADS["waterbirds"]["max_heads"],
    log:
        log_path("select_heads", "{dataset}", "{model}"),
    benchmark:
        bench_path("select_heads", "{dataset}", "{model}")
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{CLIPXAI} select-heads --heads {input} --words {params.words} --min-texts {params.min_texts}"
        " --max-heads {params.max_heads} --out {output} 2> {log}"


rule waterbirds_ablation:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        test=lambda wc: decomposition_shards(wc.dataset, wc.model, WATERBIRDS_EVAL_SPLIT),
        reference=lambda wc: decomposition_shards(wc.dataset, wc.model, WATERBIRDS_REFERENCE_SPLIT),
        classifier=lambda wc: classifier_npy(wc.dataset, wc.model),
        selection=waterbirds_result("{dataset}", "{model}", "selection.csv"),
    output:
        csv=waterbirds_result("{dataset}", "{model}", "ablation.csv"),
        finding=waterbirds_result("{dataset}", "{model}", "ablation.json"),
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
        test=lambda wc, input: shard_dirs(input.test),
        reference=lambda wc, input: shard_dirs(input.reference),
        controls=lambda wc: HEADS["waterbirds"]["controls"],
        layers=lambda wc: HEADS["explain"]["layers"],
    log:
        log_path("waterbirds_ablation", "{dataset}", "{model}"),
    benchmark:
        bench_path("waterbirds_ablation", "{dataset}", "{model}")
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "{CLIPXAI} waterbirds-ablation --data {params.root} --split {WATERBIRDS_EVAL_SPLIT}"
        " --decomposition {params.test} --reference {params.reference} --classifier {input.classifier}"
        " --selection {input.selection} --layers {params.layers} --controls {params.controls} --seed {config[seed]}"
        " --out {output.csv}"
        " 2> {log}"


# ---- tables and the figure ----
def heads_explained():
    """(data set, model, algorithm label) of every head explanation."""
    if not HEADS:
        return []
    return [(d, m, a) for d in HEADS["explain"]["datasets"] for m in HEADS["models"]
            for a in HEADS["explain"]["algorithms"]]


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


rule table_heads:
    input:
        heads=[heads_csv(d, m, a) for d, m, a in heads_explained()],
        summaries=[heads_csv(d, m, a).replace(".csv", ".json") for d, m, a in heads_explained()],
    output:
        texts=table_path("heads_texts"),
        texts_meta=sidecar(table_path("heads_texts")),
        texts_md=markdown_of(table_path("heads_texts")),
        accuracy=table_path("heads_accuracy"),
        accuracy_meta=sidecar(table_path("heads_accuracy")),
        accuracy_md=markdown_of(table_path("heads_accuracy")),
    log:
        log_path("table_heads", "heads"),
    benchmark:
        bench_path("table_heads", "heads")
    shell:
        "{CLIPXAI} table-heads --heads {input.heads} --out-texts-csv {output.texts} --out-texts-md {output.texts_md}"
        " --out-accuracy-csv {output.accuracy} --out-accuracy-md {output.accuracy_md} 2> {log}"


rule table_imagenet_seg:
    input:
        [segmentation_scores(d, m) for d, m in segmentation_pairs_heads()],
    output:
        csv=table_path("imagenet_segmentation"),
        meta=sidecar(table_path("imagenet_segmentation")),
        md=markdown_of(table_path("imagenet_segmentation")),
    log:
        log_path("table_imagenet_seg", "imagenet_segmentation"),
    benchmark:
        bench_path("table_imagenet_seg", "imagenet_segmentation")
    shell:
        "{CLIPXAI} table-imagenet-seg --scores {input} --out-csv {output.csv} --out-md {output.md} 2> {log}"


rule table_waterbirds:
    input:
        results=[waterbirds_result(d, m, "ablation.csv") for d, m in waterbirds_pairs()],
        findings=[waterbirds_result(d, m, "ablation.json") for d, m in waterbirds_pairs()],
    output:
        csv=table_path("waterbirds_heads"),
        meta=sidecar(table_path("waterbirds_heads")),
        md=markdown_of(table_path("waterbirds_heads")),
    log:
        log_path("table_waterbirds", "waterbirds_heads"),
    benchmark:
        bench_path("table_waterbirds", "waterbirds_heads")
    shell:
        "{CLIPXAI} table-waterbirds --results {input.results} --out-csv {output.csv} --out-md {output.md} 2> {log}"


rule figure_neighbours:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        shards=lambda wc: decomposition_shards(wc.dataset, wc.model, explain_split(wc.dataset)),
        heads=lambda wc: heads_csv(wc.dataset, wc.model, neighbours_algorithm()),
    output:
        png=neighbours_figure("{dataset}", "{model}"),
        pdf=neighbours_figure("{dataset}", "{model}").replace(".png", ".pdf"),
        meta=sidecar(neighbours_figure("{dataset}", "{model}")),
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        split=lambda wc: explain_split(wc.dataset),
        shards=lambda wc, input: shard_dirs(input.shards),
        spec=lambda wc: HEADS["neighbours"],
    log:
        log_path("figure_neighbours", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_neighbours", "{dataset}", "{model}")
    shell:
        "{CLIPXAI} figure-neighbours --decomposition {params.shards} --heads {input.heads} {params.data}"
        " --split {params.split} --head {params.spec[head]} --components {params.spec[components]}"
        " --queries {params.spec[queries]} --k {params.spec[k]} --seed {config[seed]}"
        " --title '{wildcards.dataset} / {wildcards.model}' --out {output.png} 2> {log}"


# What the report shows from this file (tables, then figures, in this order).
if heads_explained():
    report_table("heads_texts")
    report_table("heads_accuracy")
if segmentation_pairs_heads():
    report_table("imagenet_segmentation")
if waterbirds_pairs():
    report_table("waterbirds_heads")
for _d, _m in neighbours_pairs():
    report_figure(f"head_neighbours_{_d}_{_m}")


def heads_targets():
    """Everything this file makes for `rule all`: the tables (CSV, Markdown, sidecar) and the figures."""
    targets = []
    names = (["heads_texts", "heads_accuracy"] if heads_explained() else []) \
        + (["imagenet_segmentation"] if segmentation_pairs_heads() else []) \
        + (["waterbirds_heads"] if waterbirds_pairs() else [])
    for name in names:
        targets += [table_path(name), sidecar(table_path(name)), markdown_of(table_path(name))]
    for d, m in neighbours_pairs():
        targets += [neighbours_figure(d, m), sidecar(neighbours_figure(d, m))]
    return targets
