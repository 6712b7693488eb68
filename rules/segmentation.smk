# Dense patch-text segmentation (CLIPpy protocol, docs/protocols.md E) on VOC-format data and zero-shot classification
# on ImageNet-format data: data (the shapes world in both formats, real PASCAL VOC downloaded, the user's ImageNet
# verified), one scoring job per (data set, model), the tables and an example figure per (data set, model).
#
# Config: `segmentation: {datasets, models}` and `zeroshot: {datasets, models}`. Data set kinds: voc (real VOC 2012,
# downloaded), shapes-voc (the shapes world in VOC format), imagenet (the user's ILSVRC2012 val at `path`, never
# downloaded: checked before scoring), shapes-imagenet (the shapes world as class folders). The prompts follow the
# kind: real VOC = the replication's 60 classes "a photo of a/an {c}", shapes = its own classes "a {c}"; ImageNet =
# open_clip's class names x OpenAI's 80 templates, shapes = "a {class}".


# ---- data ----
localrules:
    download_voc,
    table_segmentation,
    table_zeroshot,


rule make_shapes_voc:
    output:
        val=voc_list("{dataset}", "val"),
        train=voc_list("{dataset}", "train"),
    log:
        log_path("make_shapes_voc", "{dataset}"),
    benchmark:
        bench_path("make_shapes_voc", "{dataset}")
    wildcard_constraints:
        dataset=names_of_kind("shapes-voc"),
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
        seed=config["seed"],
    shell:
        "python -m clipxai make-shapes --out {params.root} --format voc --seed {params.seed}"
        " --n-train {params.spec[n_train]} --n-val {params.spec[n_val]}"
        " --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


rule make_shapes_imagenet:
    output:
        f"{dataset_root('{dataset}')}/classnames.txt",
    log:
        log_path("make_shapes_imagenet", "{dataset}"),
    benchmark:
        bench_path("make_shapes_imagenet", "{dataset}")
    wildcard_constraints:
        dataset=names_of_kind("shapes-imagenet"),
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
        seed=config["seed"],
    shell:
        "python -m clipxai make-shapes --out {params.root} --format imagenet --seed {params.seed}"
        " --n-val {params.spec[n_val]} --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


rule download_voc:
    output:
        stamp=voc_stamp("{dataset}"),
    log:
        log_path("download", "{dataset}", "voc2012_trainval"),
    benchmark:
        bench_path("download", "{dataset}", "voc2012_trainval")
    wildcard_constraints:
        dataset=names_of_kind("voc"),
    conda:
        "../envs/data.yaml"
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("voc2012_trainval"),
    shell:
        "python -m clipxai download voc2012_trainval {params.url} --dest resources/downloads/VOCtrainval_11-May-2012.tar"
        " --extract-to {params.root} --remove-archive --stamp {output.stamp} 2> {log}"


# ---- scoring: one job per (data set, model) ----
rule segment_voc:
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
    log:
        log_path("segment_voc", "{dataset}", "{model}"),
    benchmark:
        bench_path("segment_voc", "{dataset}", "{model}")
    wildcard_constraints:
        dataset=f"{names_of_kind('voc')}|{names_of_kind('shapes-voc')}",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        classes=lambda wc: "voc-extended" if DATASETS[wc.dataset]["kind"] == "voc" else "dataset",
        prompt=lambda wc: "clippy" if DATASETS[wc.dataset]["kind"] == "voc" else "a {}",
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        split_images=lambda wc: voc_split_images(wc.dataset),
        model=lambda wc: model_args(wc.model),
        stamp=lambda wc: weights_stamp_arg(wc.model),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai segment-voc --data {params.root} --split {params.split} --classes {params.classes}"
        " --prompt {params.prompt:q} --max-images {params.max_images} --split-images {params.split_images}"
        " {params.model} {params.stamp}"
        " --device {params.device} --threads {threads} --batch-size {params.batch_size}"
        " --seed {params.seed} --dataset-label {wildcards.dataset} --model-label {wildcards.model} --no-progress"
        " --out {output.per_class} --summary {output.summary} --confusion {output.confusion}"
        " --figure {output.png} --rule segment_voc 2> {log}"


rule zeroshot_classify:
    input:
        data=lambda wc: imagenet_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        summary=zeroshot_result("{dataset}", "{model}", "summary.csv"),
        predictions=zeroshot_result("{dataset}", "{model}", "predictions.npz"),
    log:
        log_path("zeroshot_classify", "{dataset}", "{model}"),
    benchmark:
        bench_path("zeroshot_classify", "{dataset}", "{model}")
    wildcard_constraints:
        dataset=f"{names_of_kind('imagenet')}|{names_of_kind('shapes-imagenet')}",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=gpu_request,
    params:
        root=lambda wc: shlex.quote(imagenet_root(wc.dataset)),
        data=lambda wc: zeroshot_data_args(wc.dataset),
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        model=lambda wc: model_args(wc.model),
        stamp=lambda wc: weights_stamp_arg(wc.model),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai zeroshot --data {params.root} {params.data} --max-images {params.max_images}"
        " {params.model} {params.stamp} --device {params.device} --threads {threads} --workers {threads}"
        " --batch-size {params.batch_size} --seed {params.seed} --dataset-label {wildcards.dataset}"
        " --model-label {wildcards.model} --no-progress --out {output.summary}"
        " --predictions {output.predictions} 2> {log}"


# ---- tables and figures ----
rule table_segmentation:
    input:
        summaries=[segmentation_result(d, m, "summary.csv") for d, m in segmentation_pairs()],
        per_class=[segmentation_result(d, m, "per_class.csv") for d, m in segmentation_pairs()],
        reported=workflow.source_path("../src/clipxai/report/reported.yaml"),
    output:
        csv=table_path("segmentation_voc"),
        meta=sidecar(table_path("segmentation_voc")),
        classes=[segmentation_class_table(d) for d in SEGMENTATION["datasets"]],
        classes_meta=[sidecar(segmentation_class_table(d)) for d in SEGMENTATION["datasets"]],
        md="results/tables/segmentation_voc.md",
    log:
        log_path("table_segmentation", "segmentation_voc"),
    benchmark:
        bench_path("table_segmentation", "segmentation_voc")
    conda:
        "../envs/report.yaml"
    params:
        published=segmentation_published_args(),
        classes=" ".join(f"{d}={segmentation_class_table(d)}" for d in SEGMENTATION["datasets"]),
    shell:
        "python -m clipxai table-segmentation --summaries {input.summaries} --per-class {input.per_class}"
        " --reported {input.reported} {params.published} --out-csv {output.csv} --out-classes {params.classes}"
        " --out-md {output.md} 2> {log}"


rule table_zeroshot:
    input:
        results=[zeroshot_result(d, m, "summary.csv") for d in ZEROSHOT["datasets"] for m in ZEROSHOT["models"]],
        reported=workflow.source_path("../src/clipxai/report/reported.yaml"),
    output:
        csv=table_path("zeroshot_classification"),
        meta=sidecar(table_path("zeroshot_classification")),
        md="results/tables/zeroshot_classification.md",
    log:
        log_path("table_zeroshot", "zeroshot_classification"),
    benchmark:
        bench_path("table_zeroshot", "zeroshot_classification")
    conda:
        "../envs/report.yaml"
    params:
        published=zeroshot_published_args(),
    shell:
        "python -m clipxai table-zeroshot --results {input.results} --reported {input.reported} {params.published}"
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
