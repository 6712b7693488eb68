# Models: the embedded tiny CLIP is trained here; published models' weights are fetched on the head node.


rule train_toy_clip:
    wildcard_constraints:
        model=models_of_kind("toy"),
    input:
        train=lambda wc: png_json(MODELS[wc.model]["train_on"], "train"),
    output:
        config=f"{model_dir('{model}')}/open_clip_config.json",
        weights=f"{model_dir('{model}')}/open_clip_model.safetensors",
        summary=f"{model_dir('{model}')}/train_summary.json",
    params:
        root=lambda wc: dataset_root(MODELS[wc.model]["train_on"]),
        out=lambda wc: model_dir(wc.model),
        settings=lambda wc: shlex.quote(json.dumps(
            {k: v for k, v in MODELS[wc.model].items() if k not in ("kind", "train_on")}, sort_keys=True)),
    log:
        log_path("train_toy_clip", "{model}"),
    benchmark:
        bench_path("train_toy_clip", "{model}")
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{CLIPXAI} train-toy --data {params.root} --settings {params.settings} --seed {config[seed]}"
        " --threads {threads} --out {params.out} 2> {log}"


rule fetch_weights:
    wildcard_constraints:
        model=models_of_kind("open_clip"),
    output:
        f"{model_dir('{model}')}/weights.json",
    params:
        name=lambda wc: shlex.quote(MODELS[wc.model]["name"]),
        pretrained=lambda wc: shlex.quote(MODELS[wc.model].get("pretrained", "")),
        url=lambda wc: source_url(MODELS[wc.model]["pretrained"]) if MODELS[wc.model].get("pretrained") else "",
    log:
        log_path("fetch_weights", "{model}"),
    benchmark:
        bench_path("fetch_weights", "{model}")
    shell:
        "{CLIPXAI} fetch-weights --model {params.name} --pretrained {params.pretrained} {params.url}"
        " --lock {CHECKSUM_LOCK} --stamp {output} 2> {log}"
