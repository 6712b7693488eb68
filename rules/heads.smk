# Inside the image tower (TextSpan, seed 004; docs/protocols.md D): residual decompositions of ViT models per shard,
# attention heads described by texts (TextSpan, principal components), ImageNet-segmentation from the decomposition
# beside the attribution methods, Waterbirds worst-group accuracy with "place" heads mean-ablated, and a
# nearest-neighbour figure in one head's subspace.
#
# Config: `heads:` (src/clipxai/schemas/config.schema.yaml). Data set kinds read here: imagenet /
# shapes-imagenet (rules/segmentation.smk makes or checks them), imagenet-seg / shapes-imagenet-seg, waterbirds /
# shapes-waterbirds (downloaded or generated below). Text pools are downloaded (the papers' pools) or generated (the
# shapes world's).


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
    output:
        mat=f"{dataset_root('{dataset}')}/gtsegs_ijcv.mat",
        labels=f"{dataset_root('{dataset}')}/gtsegs_ijcv_labels.json",
    log:
        log_path("make_shapes_imagenet_seg", "{dataset}"),
    benchmark:
        bench_path("make_shapes_imagenet_seg", "{dataset}")
    wildcard_constraints:
        dataset=names_of(("shapes-imagenet-seg",)),
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        seed=config["seed"],
    shell:
        "python -m clipxai make-shapes --out {params.root} --format imagenet-seg --seed {params.seed}"
        " --n-val {params.spec[n_val]} --image-size {params.spec[image_size]} 2> {log}"


rule make_shapes_waterbirds:
    output:
        f"{dataset_root('{dataset}')}/metadata.csv",
    log:
        log_path("make_shapes_waterbirds", "{dataset}"),
    benchmark:
        bench_path("make_shapes_waterbirds", "{dataset}")
    wildcard_constraints:
        dataset=names_of(("shapes-waterbirds",)),
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        # no train split is needed: the model is used zero-shot
        n_train=lambda wc: DATASETS[wc.dataset].get("n_train", 0),
        seed=config["seed"],
    shell:
        "python -m clipxai make-shapes --out {params.root} --format waterbirds --seed {params.seed}"
        " --n-train {params.n_train} --n-val {params.spec[n_val]} --n-test {params.spec[n_test]}"
        " --image-size {params.spec[image_size]} 2> {log}"


rule download_imagenet_seg:
    output:
        f"{dataset_root('{dataset}')}/gtsegs_ijcv.mat",
    log:
        log_path("download", "{dataset}", "imagenet_seg_gtsegs"),
    benchmark:
        bench_path("download", "{dataset}", "imagenet_seg_gtsegs")
    wildcard_constraints:
        dataset=names_of(("imagenet-seg",)),
    conda:
        "../envs/data.yaml"
    params:
        url=lambda wc: source_url("imagenet_seg_gtsegs"),
        lock=CHECKSUM_LOCK,
    shell:
        "python -m clipxai download imagenet_seg_gtsegs {params.url} --dest {output} --lock {params.lock} 2> {log}"


rule download_waterbirds:
    output:
        stamp=f"{dataset_root('{dataset}')}/.waterbirds.json",
    log:
        log_path("download", "{dataset}", "waterbirds"),
    benchmark:
        bench_path("download", "{dataset}", "waterbirds")
    wildcard_constraints:
        dataset=names_of(("waterbirds",)),
    conda:
        "../envs/data.yaml"
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("waterbirds"),
        lock=CHECKSUM_LOCK,
        archive=WATERBIRDS_ARCHIVE_ROOT,
    shell:
        "python -m clipxai download waterbirds {params.url} --dest resources/downloads/{params.archive}.tar.gz"
        " --extract-to {params.root} --remove-archive --lock {params.lock} --stamp {output.stamp} 2> {log}"


rule download_text_pool:
    output:
        text_pool_path("{pool}"),
    log:
        log_path("download", "text", "{pool}"),
    benchmark:
        bench_path("download", "text", "{pool}")
    wildcard_constraints:
        pool=pools_by("source"),
    conda:
        "../envs/data.yaml"
    params:
        source=lambda wc: HEADS["text_pools"][wc.pool]["source"],
        url=lambda wc: source_url(HEADS["text_pools"][wc.pool]["source"]),
        lock=CHECKSUM_LOCK,
    shell:
        "python -m clipxai download {params.source} {params.url} --dest {output} --lock {params.lock} 2> {log}"


rule generate_text_pool:
    output:
        text_pool_path("{pool}"),
    log:
        log_path("generate_text_pool", "{pool}"),
    benchmark:
        bench_path("generate_text_pool", "{pool}")
    wildcard_constraints:
        pool=pools_by("generate"),
    conda:
        "../envs/data.yaml"
    params:
        world=lambda wc: HEADS["text_pools"][wc.pool]["generate"],
    shell:
        "python -m clipxai text-pool --world {params.world} --out {output} 2> {log}"


# ---- the decomposition: one GPU job per (data set, model, split, shard) ----
rule decompose_dataset:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        decomposition_done("{dataset}", "{model}", "{split}", "{shard}"),
    log:
        log_path("decompose_dataset", "{dataset}", "{model}", "{split}", "{shard}"),
    benchmark:
        bench_path("decompose_dataset", "{dataset}", "{model}", "{split}", "{shard}")
    wildcard_constraints:
        dataset=names_of(tuple(HEADS_FORMAT)),
        split="train|val|test",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=16000,
        runtime=120,
        gpu=gpu_request,
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        out=lambda wc: decomposition_dir(wc.dataset, wc.model, wc.split, wc.shard),
        model=lambda wc: model_args(wc.model),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        spatial=",".join(str(layer) for layer in heads_section("spatial_layers") or []) if HEADS else "",
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai decompose-dataset {params.data} --split {wildcards.split} {params.model}"
        " --shard {wildcards.shard} --shards {params.shards} --max-images {params.max_images}"
        " --spatial-layers={params.spatial:q} --batch-size {params.batch_size} --device {params.device}"
        " --threads {threads} --out {params.out} 2> {log}"


rule zeroshot_classifier:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        weights=classifier_npy("{dataset}", "{model}"),
        classes=classifier_npy("{dataset}", "{model}").replace(".npy", ".json"),
    log:
        log_path("zeroshot_classifier", "{dataset}", "{model}"),
    benchmark:
        bench_path("zeroshot_classifier", "{dataset}", "{model}")
    wildcard_constraints:
        dataset=names_of(tuple(HEADS_FORMAT)),
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=gpu_request,
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        model=lambda wc: model_args(wc.model),
        templates=heads_section("templates") or "openai",
        max_templates=config.get("max_templates", 0),
        device=config["device"],
    shell:
        "python -m clipxai zeroshot-classifier {params.data} {params.model} --templates {params.templates}"
        " --max-templates {params.max_templates}"
        " --device {params.device} --out {output.weights} 2> {log}"


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
    log:
        log_path("explain_heads", "{dataset}", "{model}", "{algorithm}"),
    benchmark:
        bench_path("explain_heads", "{dataset}", "{model}", "{algorithm}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        # the verb holds every explained image's head terms in memory: ViT-H on ImageNet val needs ~110 GB
        mem_mb=lambda wc: HEADS["explain"]["mem_mb"],
        runtime=240,
    params:
        shards=lambda wc, input: shard_dirs(input.shards),
        model=lambda wc: model_args(wc.model),
        algorithm=lambda wc: HEADS["explain"]["algorithms"][wc.algorithm]["algorithm"],
        layers=lambda wc: HEADS["explain"]["layers"],
        m=lambda wc: HEADS["explain"]["algorithms"][wc.algorithm].get("m", HEADS["explain"]["m"]),
        options=lambda wc: " ".join(
            f"--{key} {HEADS['explain']['algorithms'][wc.algorithm][key]}"
            for key in ("rank", "mode")
            if key in HEADS["explain"]["algorithms"][wc.algorithm]
        ),
    shell:
        "python -m clipxai explain-heads --decomposition {params.shards} --texts {input.pool} {params.model} --device cpu"
        " --algorithm {params.algorithm} --layers {params.layers} --m {params.m} {params.options}"
        " --classifier {input.classifier} --out {output.csv} --accuracy-out {output.summary} 2> {log}"


# ---- ImageNet segmentation: maps of every method per shard on the GPU (one model and data load), scored per
# (data set, model) ----
rule segment_imagenet:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
        classifier=lambda wc: classifier_npy(wc.dataset, wc.model),
    output:
        [segmentation_maps("{dataset}", "{model}", method, "{shard}") for method in segmentation_methods()],
    log:
        log_path("segment_imagenet", "{dataset}", "{model}", "{shard}"),
    benchmark:
        bench_path("segment_imagenet", "{dataset}", "{model}", "{shard}")
    wildcard_constraints:
        dataset=names_of(("imagenet-seg", "shapes-imagenet-seg")),
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=SEGMENT_IMAGENET_RUNTIME,
        gpu=gpu_request,
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
        model=lambda wc: model_args(wc.model),
        methods=" ".join(segmentation_method_json(method) for method in segmentation_methods()),
        labels=" ".join(shlex.quote(method) for method in segmentation_methods()),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_images=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai segment-imagenet --data {params.root} {params.model} --classifier {input.classifier}"
        " --method {params.methods} --label {params.labels} --shard {wildcards.shard} --shards {params.shards}"
        " --max-images {params.max_images} --seed {params.seed} --batch-size {params.batch_size}"
        " --device {params.device} --threads {threads} --out {output} 2> {log}"


rule score_segmentation:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        maps=lambda wc: [
            segmentation_maps(wc.dataset, wc.model, method, s)
            for method in segmentation_methods()
            for s in shards(wc.dataset)
        ],
    output:
        segmentation_scores("{dataset}", "{model}"),
    log:
        log_path("score_segmentation", "{dataset}", "{model}"),
    benchmark:
        bench_path("score_segmentation", "{dataset}", "{model}")
    # reads gtsegs_ijcv.mat (h5py), upsamples with torch, AP from scikit-learn: the torch env has them
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
    shell:
        "python -m clipxai score-segmentation --data {params.root} --maps {input.maps} --out {output} 2> {log}"


# ---- Waterbirds: heads chosen by their texts, mean-ablated ----
rule select_heads:
    input:
        lambda wc: heads_csv(HEADS["waterbirds"]["select_on"], wc.model, HEADS["waterbirds"]["select_with"]),
    output:
        waterbirds_result("{dataset}", "{model}", "selection.csv"),
    log:
        log_path("select_heads", "{dataset}", "{model}"),
    benchmark:
        bench_path("select_heads", "{dataset}", "{model}")
    conda:
        "../envs/report.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        words=lambda wc: " ".join(shlex.quote(w) for w in HEADS["waterbirds"]["words"]),
        min_texts=lambda wc: HEADS["waterbirds"]["min_texts"],
        max_heads=lambda wc: HEADS["waterbirds"]["max_heads"],
    shell:
        "python -m clipxai select-heads --heads {input} --words {params.words} --min-texts {params.min_texts}"
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
    log:
        log_path("waterbirds_ablation", "{dataset}", "{model}"),
    benchmark:
        bench_path("waterbirds_ablation", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        root=lambda wc: shlex.quote(heads_data_root(wc.dataset)),
        test=lambda wc, input: shard_dirs(input.test),
        reference=lambda wc, input: shard_dirs(input.reference),
        controls=lambda wc: HEADS["waterbirds"]["controls"],
        layers=lambda wc: HEADS["explain"]["layers"],
        seed=config["seed"],
        split=WATERBIRDS_EVAL_SPLIT,
    shell:
        "python -m clipxai waterbirds-ablation --data {params.root} --split {params.split}"
        " --decomposition {params.test} --reference {params.reference} --classifier {input.classifier}"
        " --selection {input.selection} --layers {params.layers} --controls {params.controls} --seed {params.seed}"
        " --out {output.csv}"
        " 2> {log}"


# ---- tables and the figure ----
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
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai table-heads --heads {input.heads} --out-texts-csv {output.texts} --out-texts-md {output.texts_md}"
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
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai table-imagenet-seg --scores {input} --out-csv {output.csv} --out-md {output.md} 2> {log}"


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
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai table-waterbirds --results {input.results} --out-csv {output.csv} --out-md {output.md} 2> {log}"


rule figure_neighbours:
    input:
        data=lambda wc: heads_data_inputs(wc.dataset),
        shards=lambda wc: decomposition_shards(wc.dataset, wc.model, explain_split(wc.dataset)),
        heads=lambda wc: heads_csv(wc.dataset, wc.model, neighbours_algorithm()),
    output:
        png=neighbours_figure("{dataset}", "{model}"),
        pdf=neighbours_figure("{dataset}", "{model}").replace(".png", ".pdf"),
        meta=sidecar(neighbours_figure("{dataset}", "{model}")),
    log:
        log_path("figure_neighbours", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_neighbours", "{dataset}", "{model}")
    conda:
        "../envs/report.yaml"
    params:
        data=lambda wc: heads_data_args(wc.dataset),
        split=lambda wc: explain_split(wc.dataset),
        shards=lambda wc, input: shard_dirs(input.shards),
        spec=lambda wc: HEADS["neighbours"],
        seed=config["seed"],
    shell:
        "python -m clipxai figure-neighbours --decomposition {params.shards} --heads {input.heads} {params.data}"
        " --split {params.split} --head {params.spec[head]} --components {params.spec[components]}"
        " --queries {params.spec[queries]} --k {params.spec[k]} --seed {params.seed}"
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
