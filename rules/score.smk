# Scoring: per-entry values and summaries with bootstrap confidence intervals; grounding: one job per
# (data set, model) scoring every method, one pair of tables per method.


rule score_grounding:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        maps=lambda wc: [maps_npz(wc.dataset, wc.model, m, s) for m in METHODS for s in shards(wc.dataset)],
    output:
        entries=[grounding_scores("{dataset}", "{model}", method) for method in METHODS],
        summary=[grounding_summary("{dataset}", "{model}", method) for method in METHODS],
    log:
        log_path("score_grounding", "{dataset}", "{model}"),
    benchmark:
        bench_path("score_grounding", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        modes=" ".join(GROUNDING["modes"]),
        max_entries=lambda wc: DATASETS[wc.dataset].get("max_entries", 0),
        seed=config["seed"],
        bootstrap=config["grounding"]["bootstrap"],
        methods=" ".join(METHODS),
        pairs=lambda wc: scoring_pairs(wc.dataset, wc.model),
    shell:
        "python -m clipxai score-grounding --data {params.root} --split {params.split} --method {params.methods}"
        " {params.pairs} --modes {params.modes} --max-entries {params.max_entries} --seed {params.seed}"
        " --bootstrap {params.bootstrap} 2> {log}"


rule zeroshot_shapes:
    input:
        data=lambda wc: dataset_inputs(wc.dataset, "val"),
        model=lambda wc: model_files(wc.model),
    output:
        zeroshot_csv("{dataset}", "{model}"),
    log:
        log_path("zeroshot_shapes", "{dataset}", "{model}"),
    benchmark:
        bench_path("zeroshot_shapes", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        model=lambda wc: model_args(wc.model),
        held_out=lambda wc: ",".join(DATASETS[wc.dataset].get("held_out", [])),
    shell:
        "python -m clipxai zeroshot-shapes --data {params.root} {params.model} --held-out {params.held_out:q}"
        " --out {output} 2> {log}"
