# Data sets: the embedded shapes world is generated here; real data sets are downloaded (verified, atomic).


rule make_shapes:
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
