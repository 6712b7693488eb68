# Models: the embedded tiny CLIP is trained here; published models' weights are fetched on the head node.


rule train_toy_clip:
    input:
        train=lambda wc: png_json(MODELS[wc.model]["train_on"], "train"),
    output:
        config=f"{model_dir('{model}')}/open_clip_config.json",
        weights=f"{model_dir('{model}')}/open_clip_model.safetensors",
        summary=f"{model_dir('{model}')}/train_summary.json",
    log:
        log_path("train_toy_clip", "{model}"),
    benchmark:
        bench_path("train_toy_clip", "{model}")
    wildcard_constraints:
        model=models_of_kind("toy"),
    conda:
        "../envs/torch.yaml"
    threads: lambda wc: MODELS[wc.model].get("threads", config["threads"])
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        root=lambda wc: dataset_root(MODELS[wc.model]["train_on"]),
        out=lambda wc: model_dir(wc.model),
        settings=lambda wc: shlex.quote(
            json.dumps(
                {k: v for k, v in MODELS[wc.model].items() if k not in ("kind", "train_on", "threads")}, sort_keys=True
            )
        ),
        seed=config["seed"],
    shell:
        "python -m clipxai train-toy --data {params.root} --settings {params.settings} --seed {params.seed}"
        " --threads {threads} --out {params.out} 2> {log}"


rule fetch_weights:
    input:
        # a local checkpoint (config `checkpoint:`) is an input: replacing it refetches, and every job reruns
        lambda wc: [MODELS[wc.model]["checkpoint"]] if MODELS[wc.model].get("checkpoint") else [],
    output:
        f"{model_dir('{model}')}/weights.json",
    log:
        log_path("fetch_weights", "{model}"),
    benchmark:
        bench_path("fetch_weights", "{model}")
    wildcard_constraints:
        model=models_of_kind("open_clip"),
    conda:
        "../envs/torch.yaml"
    params:
        name=lambda wc: shlex.quote(MODELS[wc.model]["name"]),
        weights=lambda wc: weights_args(wc.model),
        tokenizer=lambda wc: source_url("sentence_t5_base_tokenizer", prefix="tokenizer-"),
        cache=WEIGHTS_CACHE,
        lock=CHECKSUM_LOCK,
    shell:
        "python -m clipxai fetch-weights --model {params.name} {params.weights} {params.tokenizer}"
        " --cache-dir {params.cache} --lock {params.lock} --stamp {output} --no-progress 2> {log}"
