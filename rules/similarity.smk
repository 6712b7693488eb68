# Seed 001's similarity studies: images against words of one domain (colours, shapes, emotions, expressions) or
# other images, each similarity explained by an attribution method; scored where labels exist.


localrules:
    table_similarity,


rule similarity:
    input:
        similarity_inputs,
    output:
        similarity_npz("{study}", "{model}"),
    log:
        log_path("similarity", "{study}", "{model}"),
    benchmark:
        bench_path("similarity", "{study}", "{model}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_request,
    params:
        spec=lambda wc: similarity_spec(wc.study),
        model=lambda wc: model_args(wc.model),
        method=lambda wc: method_json(SIMILARITY.get("method", "rollout-last-grad")),
        n_images=SIMILARITY.get("n_images", 0),
        seed=config["seed"],
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai similarity --study {wildcards.study} --spec {params.spec} {params.model}"
        " --method {params.method} --n-images {params.n_images} --seed {params.seed} --batch-size {params.batch_size}"
        " --device {params.device} --threads {threads} --out {output} 2> {log}"


rule table_similarity:
    input:
        results=all_similarity(),
        reported=workflow.source_path("../src/clipxai/report/reported.yaml"),
    output:
        csv=report(table_path("similarity"), caption="../report/snakemake/figure.rst", category="Tables"),
        meta=sidecar(table_path("similarity")),
        claims=report(table_path("similarity_claims"), caption="../report/snakemake/figure.rst", category="Tables"),
        claims_meta=sidecar(table_path("similarity_claims")),
    log:
        log_path("table_similarity", "similarity"),
    benchmark:
        bench_path("table_similarity", "similarity")
    conda:
        "../envs/torch.yaml"
    params:
        top_k=SIMILARITY.get("top_k", 3),
        seed=config["seed"],
        bootstrap=GROUNDING["bootstrap"],
    shell:
        "python -m clipxai table-similarity --results {input.results} --top-k {params.top_k} --seed {params.seed}"
        " --bootstrap {params.bootstrap} --reported {input.reported} --out {output.csv}"
        " --out-claims {output.claims} 2> {log}"


rule figure_similarity:
    input:
        similarity_npz("{study}", "{model}"),
    output:
        png=report(
            figure_path("similarity_{study}_{model}"),
            caption="../report/snakemake/figure.rst",
            category="Figures",
            subcategory="{study} / {model}",
        ),
        pdf="results/figures/similarity_{study}_{model}.pdf",
        meta=sidecar(figure_path("similarity_{study}_{model}")),
    log:
        log_path("figure_similarity", "{study}", "{model}"),
    benchmark:
        bench_path("figure_similarity", "{study}", "{model}")
    conda:
        "../envs/torch.yaml"
    params:
        n=SIMILARITY.get("figure_images", 4),
        label="{study} / {model}",
    shell:
        "python -m clipxai figure-similarity --result {input} --n {params.n} --label {params.label:q}"
        " --out {output.png} 2> {log}"


if all_similarity():
    report_table("similarity")
    report_table("similarity_claims")
    for _s in SIMILARITY["studies"]:
        report_figure(f"similarity_{_s}_{SIMILARITY['models'][0]}")
