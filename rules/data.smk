# Data sets: the embedded shapes world is generated here; real data sets are downloaded (verified, atomic).


rule make_shapes:
    wildcard_constraints:
        dataset=names_of_kind("shapes"),
    output:
        train=png_json("{dataset}", "train"),
        val=png_json("{dataset}", "val"),
    params:
        root=lambda wc: dataset_root(wc.dataset),
        spec=lambda wc: DATASETS[wc.dataset],
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
    log:
        log_path("make_shapes", "{dataset}"),
    benchmark:
        bench_path("make_shapes", "{dataset}")
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{CLIPXAI} make-shapes --out {params.root} --format coco-png --seed {config[seed]}"
        " --n-train {params.spec[n_train]} --n-val {params.spec[n_val]}"
        " --image-size {params.spec[image_size]} --held-out {params.held_out:q} 2> {log}"


# ---- real data sets (config/paper.yaml). Downloads run on the head node: compute nodes may have no internet. ----
# Each download is verified (size + sha256/md5, or a checksum recorded at first download in the lock file),
# written to a temp name and renamed; `config["sources"]` overrides any URL (a lab mirror or a local path).

CHECKSUM_LOCK = "config/checksums.lock.yaml"


def source_url(name):
    url = config.get("sources", {}).get(name)
    return f"--url {shlex.quote(url)}" if url else ""


localrules:
    download_coco_images,
    download_coco_panoptic,
    download_png_narratives,
    fetch_weights,


rule download_coco_images:
    wildcard_constraints:
        dataset=names_of_kind("png"),
    output:
        stamp=f"{dataset_root('{dataset}')}/.coco_val2017_images.json",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("coco_val2017_images"),
    log:
        log_path("download", "{dataset}", "coco_val2017_images"),
    benchmark:
        bench_path("download", "{dataset}", "coco_val2017_images")
    shell:
        "{CLIPXAI} download coco_val2017_images {params.url} --dest resources/downloads/val2017.zip"
        " --extract-to {params.root}/images --remove-archive --stamp {output.stamp} 2> {log}"


rule download_coco_panoptic:
    wildcard_constraints:
        dataset=names_of_kind("png"),
    output:
        stamp=f"{dataset_root('{dataset}')}/.coco_panoptic_annotations.json",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        url=lambda wc: source_url("coco_panoptic_annotations"),
    log:
        log_path("download", "{dataset}", "coco_panoptic_annotations"),
    benchmark:
        bench_path("download", "{dataset}", "coco_panoptic_annotations")
    shell:
        "{CLIPXAI} download coco_panoptic_annotations {params.url}"
        " --dest resources/downloads/panoptic_annotations_trainval2017.zip --extract-to {params.root}"
        " --stamp {output.stamp} 2> {log}"


rule download_png_narratives:
    wildcard_constraints:
        dataset=names_of_kind("png"),
    input:
        images=f"{dataset_root('{dataset}')}/.coco_val2017_images.json",
        panoptic=f"{dataset_root('{dataset}')}/.coco_panoptic_annotations.json",
    output:
        png_json("{dataset}", "val"),
    params:
        url=lambda wc: source_url("png_coco_val2017"),
    log:
        log_path("download", "{dataset}", "png_coco_val2017"),
    benchmark:
        bench_path("download", "{dataset}", "png_coco_val2017")
    shell:
        "{CLIPXAI} download png_coco_val2017 {params.url} --dest {output} --lock {CHECKSUM_LOCK} 2> {log}"
