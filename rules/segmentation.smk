# Dense patch-text segmentation (CLIPpy protocol, PROTOCOLS.md E) on VOC-format data and zero-shot classification
# on ImageNet-format data: data (the shapes world in both formats, real PASCAL VOC downloaded, the user's ImageNet
# verified), one scoring job per (data set, model), the tables and an example figure per (data set, model).
#
# Config: `segmentation: {datasets, models}` and `zeroshot: {datasets, models}`. Data set kinds: voc (real VOC 2012,
# downloaded), shapes-voc (the shapes world in VOC format), imagenet (the user's ILSVRC2012 val at `path`, never
# downloaded: checked before scoring), shapes-imagenet (the shapes world as class folders). The prompts follow the
# kind: real VOC = the replication's 60 classes "a photo of a/an {c}", shapes = its own classes "a {c}"; ImageNet =
# open_clip's class names x OpenAI's 80 templates, shapes = "a {class}".

SEGMENTATION = config.get("segmentation") or {"datasets": [], "models": []}
ZEROSHOT = config.get("zeroshot") or {"datasets": [], "models": []}
CLIPPY_SPEC = ("clippy-B-16", "clippy_5k")  # (open_clip name, checkpoint) of the published CLIPpy numbers

for _section, _kinds in (("segmentation", ("voc", "shapes-voc")), ("zeroshot", ("imagenet", "shapes-imagenet"))):
    _spec = SEGMENTATION if _section == "segmentation" else ZEROSHOT
    for _d in _spec["datasets"]:
        if _d not in DATASETS or DATASETS[_d]["kind"] not in _kinds:
            raise WorkflowError(f"invalid configuration: {_section}.datasets: {_d!r} is not a data set of kind "
                                f"{' or '.join(_kinds)}")
    for _m in _spec["models"]:
        if _m not in MODELS:
            raise WorkflowError(f"invalid configuration: {_section}.models: {_m!r} is not a model under models")
for _d, _spec in DATASETS.items():
    if _spec["kind"] == "imagenet" and not _spec.get("path"):
        raise WorkflowError(f"invalid configuration: datasets.{_d}.path: the folder of your own ImageNet validation "
                            "set (licence-bound: it is checked, never downloaded)")


# ---- paths (declared once) ----
def voc_list(dataset, split):
    return f"{dataset_root(dataset)}/VOCdevkit/VOC2012/ImageSets/Segmentation/{split}.txt"


def voc_stamp(dataset):
    return f"{dataset_root(dataset)}/.voc2012_trainval.json"


def voc_inputs(dataset):
    """What a job reading a VOC-format data set depends on: the download stamp, or the generated split list."""
    if DATASETS[dataset]["kind"] == "voc":
        return [voc_stamp(dataset)]
    return [voc_list(dataset, DATASETS[dataset].get("split", "val"))]


def imagenet_root(dataset):
    spec = DATASETS[dataset]
    return spec["path"] if spec["kind"] == "imagenet" else dataset_root(dataset)


def imagenet_inputs(dataset):
    """The generated class-name list of a shapes set; nothing for the user's ImageNet (checked by the job)."""
    return [f"{dataset_root(dataset)}/classnames.txt"] if DATASETS[dataset]["kind"] == "shapes-imagenet" else []


def segmentation_result(dataset, model, name):
    return f"results/{dataset}/{model}/segmentation/{name}"


def segmentation_figure(dataset, model):
    return figure_path(f"segmentation_examples_{dataset}_{model}")


def zeroshot_result(dataset, model, name):
    return f"results/{dataset}/{model}/zeroshot/{name}"


def weights_stamp_arg(model):
    """Where fetch-weights put a published model's checkpoint (CLIPpy's clippy_5k is not an open_clip tag)."""
    return f"--weights-stamp {model_files(model)[0]}" if MODELS[model]["kind"] == "open_clip" else ""


def is_clippy_release(model):
    spec = MODELS[model]
    return (spec.get("name"), spec.get("pretrained")) == CLIPPY_SPEC


def _published_ids():
    """Ids under `published` in report/reported.yaml (a run is tied to a published number only if it is there)."""
    import yaml

    with open(workflow.source_path("../report/reported.yaml")) as fh:
        return set((yaml.safe_load(fh) or {}).get("published") or {})


def segmentation_published_args():
    args = []
    for d in SEGMENTATION["datasets"]:
        if DATASETS[d]["kind"] != "voc":
            continue
        for m in SEGMENTATION["models"]:
            if is_clippy_release(m):
                args += [f"--published-miou {d}:{m}=clippy.voc_miou", f"--published-ji {d}:{m}=clippy.voc_ji"]
    return " ".join(args)


def zeroshot_published_args():
    known, args = _published_ids(), []
    for d in ZEROSHOT["datasets"]:
        if DATASETS[d]["kind"] != "imagenet":
            continue
        for m in ZEROSHOT["models"]:
            spec = MODELS[m]
            if is_clippy_release(m):
                key = "clippy.imagenet_zeroshot_top1"
            else:
                key = f"open_clip.imagenet1k.{spec.get('name')}.{spec.get('pretrained')}"
            if key in known:
                args.append(f"--published {d}:{m}={key}")
    return " ".join(args)


# ---- data ----
localrules:
    download_voc,
    table_segmentation,
    table_zeroshot,


rule make_shapes_voc:
    wildcard_constraints:
        dataset=names_of_kind("shapes-voc"),
    output:
        val=voc_list("{dataset}", "val"),
        train=voc_list("{dataset}", "train"),
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
    log:
        log_path("make_shapes_voc", "{dataset}"),
    benchmark:
        bench_path("make_shapes_voc", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{CLIPXAI} make-shapes --out {params.root} --format voc --seed {config[seed]}"
        " --n-train {params.spec[n_train]} --n-val {params.spec[n_val]}"
        " --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


rule make_shapes_imagenet:
    wildcard_constraints:
        dataset=names_of_kind("shapes-imagenet"),
    output:
        f"{dataset_root('{dataset}')}/classnames.txt",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
    log:
        log_path("make_shapes_imagenet", "{dataset}"),
    benchmark:
        bench_path("make_shapes_imagenet", "{dataset}")
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{CLIPXAI} make-shapes --out {params.root} --format imagenet --seed {config[seed]}"
        " --n-val {params.spec[n_val]} --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


rule download_voc:
    wildcard_constraints:
        dataset=names_of_kind("voc"),
    output:
        stamp=voc_stamp("{dataset}"),
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("voc2012_trainval"),
    log:
        log_path("download", "{dataset}", "voc2012_trainval"),
    benchmark:
        bench_path("download", "{dataset}", "voc2012_trainval")
    shell:
        "{CLIPXAI} download voc2012_trainval {params.url} --dest resources/downloads/VOCtrainval_11-May-2012.tar"
        " --extract-to {params.root} --remove-archive --stamp {output.stamp} 2> {log}"


# ---- scoring: one job per (data set, model) ----
rule segment_voc:
    wildcard_constraints:
        dataset=f"{names_of_kind('voc')}|{names_of_kind('shapes-voc')}",
    input:
        data=lambda wc: voc_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        per_class=segmentation_result("{dataset}", "{model}", "per_class.csv"),
        summary=segmentation_result("{dataset}", "{model}", "summary.csv"),
        confusion=segmentation_result("{dataset}", "{model}", "confusion.npz"),
        png=segmentation_figure("{dataset}", "{model}"),
        pdf=segmentation_figure("{dataset}", "{model}").replace(".png", ".pdf"),
        meta=sidecar(segmentation_figure("{dataset}", "{model}")),
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        classes=lambda wc: "voc-extended" if DATASETS[wc.dataset]["kind"] == "voc" else "dataset",
        prompt=lambda wc: "clippy" if DATASETS[wc.dataset]["kind"] == "voc" else "a {}",
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        model=lambda wc: model_args(wc.model),
        stamp=lambda wc: weights_stamp_arg(wc.model),
    log:
        log_path("segment_voc", "{dataset}", "{model}"),
    benchmark:
        bench_path("segment_voc", "{dataset}", "{model}")
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request,
    shell:
        "{CLIPXAI} segment-voc --data {params.root} --split {params.split} --classes {params.classes}"
        " --prompt {params.prompt:q} --max-images {params.max_images} {params.model} {params.stamp}"
        " --device {config[device]} --threads {threads} --batch-size {config[batch_size]}"
        " --seed {config[seed]} --dataset-label {wildcards.dataset} --model-label {wildcards.model} --no-progress"
        " --out {output.per_class} --summary {output.summary} --confusion {output.confusion}"
        " --figure {output.png} --rule segment_voc 2> {log}"


def zeroshot_data_args(dataset):
    """Class names, templates and the completeness check of a zero-shot data set, by kind."""
    spec = DATASETS[dataset]
    if spec["kind"] == "imagenet":
        devkit = f" --devkit {shlex.quote(spec['devkit'])}" if spec.get("devkit") else ""
        return "--classnames imagenet --templates openai --verify" + devkit
    return (f"--classnames dataset --templates given --template 'a {{}}' --verify --expect-images {spec['n_val']}"
            f" --expect-classes {min(spec['n_val'], 30)} --no-require-wnids")


rule zeroshot_classify:
    wildcard_constraints:
        dataset=f"{names_of_kind('imagenet')}|{names_of_kind('shapes-imagenet')}",
    input:
        data=lambda wc: imagenet_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        summary=zeroshot_result("{dataset}", "{model}", "summary.csv"),
        predictions=zeroshot_result("{dataset}", "{model}", "predictions.npz"),
    params:
        root=lambda wc: shlex.quote(imagenet_root(wc.dataset)),
        data=lambda wc: zeroshot_data_args(wc.dataset),
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        model=lambda wc: model_args(wc.model),
        stamp=lambda wc: weights_stamp_arg(wc.model),
    log:
        log_path("zeroshot_classify", "{dataset}", "{model}"),
    benchmark:
        bench_path("zeroshot_classify", "{dataset}", "{model}")
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=gpu_request,
    shell:
        "{CLIPXAI} zeroshot --data {params.root} {params.data} --max-images {params.max_images}"
        " {params.model} {params.stamp} --device {config[device]} --threads {threads} --workers {threads}"
        " --batch-size {config[batch_size]} --seed {config[seed]} --dataset-label {wildcards.dataset}"
        " --model-label {wildcards.model} --no-progress --out {output.summary}"
        " --predictions {output.predictions} 2> {log}"


# ---- tables and figures ----
def segmentation_pairs():
    return [(d, m) for d in SEGMENTATION["datasets"] for m in SEGMENTATION["models"]]


def segmentation_class_table(dataset):
    return table_path(f"segmentation_voc_classes_{dataset}")


rule table_segmentation:
    input:
        summaries=[segmentation_result(d, m, "summary.csv") for d, m in segmentation_pairs()],
        per_class=[segmentation_result(d, m, "per_class.csv") for d, m in segmentation_pairs()],
        reported=workflow.source_path("../report/reported.yaml"),
    output:
        csv=table_path("segmentation_voc"),
        meta=sidecar(table_path("segmentation_voc")),
        classes=[segmentation_class_table(d) for d in SEGMENTATION["datasets"]],
        classes_meta=[sidecar(segmentation_class_table(d)) for d in SEGMENTATION["datasets"]],
        md="results/tables/segmentation_voc.md",
    params:
        published=segmentation_published_args(),
        classes=" ".join(f"{d}={segmentation_class_table(d)}" for d in SEGMENTATION["datasets"]),
    log:
        log_path("table_segmentation", "segmentation_voc"),
    benchmark:
        bench_path("table_segmentation", "segmentation_voc")
    shell:
        "{CLIPXAI} table-segmentation --summaries {input.summaries} --per-class {input.per_class}"
        " --reported {input.reported} {params.published} --out-csv {output.csv} --out-classes {params.classes}"
        " --out-md {output.md} 2> {log}"


rule table_zeroshot:
    input:
        results=[zeroshot_result(d, m, "summary.csv") for d in ZEROSHOT["datasets"] for m in ZEROSHOT["models"]],
        reported=workflow.source_path("../report/reported.yaml"),
    output:
        csv=table_path("zeroshot_classification"),
        meta=sidecar(table_path("zeroshot_classification")),
        md="results/tables/zeroshot_classification.md",
    params:
        published=zeroshot_published_args(),
    log:
        log_path("table_zeroshot", "zeroshot_classification"),
    benchmark:
        bench_path("table_zeroshot", "zeroshot_classification")
    shell:
        "{CLIPXAI} table-zeroshot --results {input.results} --reported {input.reported} {params.published}"
        " --out-csv {output.csv} --out-md {output.md} 2> {log}"


# What the report shows from this file (tables and figures, in this order).
if segmentation_pairs():
    report_table("segmentation_voc")
    for _d in SEGMENTATION["datasets"]:
        report_table(f"segmentation_voc_classes_{_d}")
    for _d, _m in segmentation_pairs():
        report_figure(f"segmentation_examples_{_d}_{_m}")
if ZEROSHOT["datasets"] and ZEROSHOT["models"]:
    report_table("zeroshot_classification")


def segmentation_targets():
    """Everything this file makes for `rule all`: the tables, their sidecars and the example figures."""
    targets = []
    if segmentation_pairs():
        targets += [table_path("segmentation_voc"), "results/tables/segmentation_voc.md"]
        targets += [segmentation_class_table(d) for d in SEGMENTATION["datasets"]]
        targets += [segmentation_figure(d, m) for d, m in segmentation_pairs()]
    if ZEROSHOT["datasets"] and ZEROSHOT["models"]:
        targets += [table_path("zeroshot_classification"), "results/tables/zeroshot_classification.md"]
    return targets
