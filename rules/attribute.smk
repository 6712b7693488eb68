# Attribution: one job per (data set, model, shard) running every grounding method (one model and data load);
# one maps file per method, stored at patch-grid resolution.


rule ground:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        [maps_npz("{dataset}", "{model}", method, "{shard}") for method in METHODS],
    log:
        log_path("ground", "{dataset}", "{model}", "{shard}"),
    benchmark:
        bench_path("ground", "{dataset}", "{model}", "{shard}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=GROUND_RUNTIME,
        gpu=gpu_request,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        model=lambda wc: model_args(wc.model),
        methods=" ".join(method_json(method) for method in METHODS),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_entries=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai ground --data {params.root} --split {params.split} {params.model} --method {params.methods}"
        " --shard {wildcards.shard} --shards {params.shards} --max-entries {params.max_entries}"
        " --seed {params.seed} --batch-size {params.batch_size} --device {params.device} --threads {threads}"
        " --out {output} 2> {log}"
