# Attribution: one job per (data set, model, method, shard); maps stored at patch-grid resolution.


rule ground:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
    output:
        maps_npz("{dataset}", "{model}", "{method}", "{shard}"),
    log:
        log_path("ground", "{dataset}", "{model}", "{method}", "{shard}"),
    benchmark:
        bench_path("ground", "{dataset}", "{model}", "{method}", "{shard}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_request,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        model=lambda wc: model_args(wc.model),
        method=lambda wc: method_json(wc.method),
        shards=lambda wc: DATASETS[wc.dataset]["shards"],
        max_entries=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai ground --data {params.root} --split {params.split} {params.model} --method {params.method}"
        " --shard {wildcards.shard} --shards {params.shards} --max-entries {params.max_entries}"
        " --seed {params.seed} --batch-size {params.batch_size} --device {params.device} --threads {threads}"
        " --out {output} 2> {log}"
