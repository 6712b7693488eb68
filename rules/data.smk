# Data sets: the embedded shapes world is generated here; real data sets are downloaded (verified, atomic).


rule make_shapes:
    output:
        train=png_json("{dataset}", "train"),
        val=png_json("{dataset}", "val"),
    log:
        log_path("make_shapes", "{dataset}"),
    benchmark:
        bench_path("make_shapes", "{dataset}")
    wildcard_constraints:
        dataset=names_of_kind("shapes"),
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
        seed=config["seed"],
    shell:
        "python -m clipxai make-shapes --out {params.root} --format coco-png --seed {params.seed}"
        " --n-train {params.spec[n_train]} --n-val {params.spec[n_val]}"
        " --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


# ---- real data sets (config/paper.yaml). Downloads run on the head node: compute nodes may have no internet. ----
# Each download is verified (size + sha256/md5, or a checksum recorded at first download in CHECKSUM_LOCK),
# written to a temp name and renamed; `config["sources"]` overrides any URL (a lab mirror or a local path).


localrules:
    download_coco_images,
    download_coco_panoptic,
    download_png_narratives,
    fetch_weights,


rule download_coco_images:
    output:
        stamp=f"{dataset_root('{dataset}')}/.coco_val2017_images.json",
    log:
        log_path("download", "{dataset}", "coco_val2017_images"),
    benchmark:
        bench_path("download", "{dataset}", "coco_val2017_images")
    wildcard_constraints:
        dataset=names_of_kind("png"),
    conda:
        "../envs/data.yaml"
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("coco_val2017_images"),
    shell:
        "python -m clipxai download coco_val2017_images {params.url} --dest resources/downloads/val2017.zip"
        " --extract-to {params.root}/images --remove-archive --stamp {output.stamp} 2> {log}"


rule download_coco_panoptic:
    output:
        stamp=f"{dataset_root('{dataset}')}/.coco_panoptic_annotations.json",
    log:
        log_path("download", "{dataset}", "coco_panoptic_annotations"),
    benchmark:
        bench_path("download", "{dataset}", "coco_panoptic_annotations")
    wildcard_constraints:
        dataset=names_of_kind("png"),
    conda:
        "../envs/data.yaml"
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("coco_panoptic_annotations"),
    shell:
        "python -m clipxai download coco_panoptic_annotations {params.url}"
        " --dest resources/downloads/panoptic_annotations_trainval2017.zip --extract-to {params.root}"
        " --stamp {output.stamp} 2> {log}"


rule download_png_narratives:
    input:
        images=f"{dataset_root('{dataset}')}/.coco_val2017_images.json",
        panoptic=f"{dataset_root('{dataset}')}/.coco_panoptic_annotations.json",
    output:
        png_json("{dataset}", "val"),
    log:
        log_path("download", "{dataset}", "png_coco_val2017"),
    benchmark:
        bench_path("download", "{dataset}", "png_coco_val2017")
    wildcard_constraints:
        dataset=names_of_kind("png"),
    conda:
        "../envs/data.yaml"
    params:
        url=lambda wc: source_url("png_coco_val2017"),
        lock=CHECKSUM_LOCK,
    shell:
        "python -m clipxai download png_coco_val2017 {params.url} --dest {output} --lock {params.lock} 2> {log}"
