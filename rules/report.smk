# Tables, figures and the report: one rule per table and per figure, each tracing back to its result files.
#
# Adding a table or a figure to the report (from any .smk file): make a rule whose command writes
#   results/tables/<name>.csv  (tidy CSV)  or  results/figures/<name>.png (+ .pdf)
# and, beside it, the JSON sidecar <name>.json with title, caption, rule, command, inputs and optionally a section
# (clipxai.viz.provenance.write_sidecar does it). Declare the file with report_table(name) / report_figure(name)
# (rules/common.smk) for every concrete name: the report rule below collects whatever was declared, in order.
# A table that reproduces published numbers gives each such row a column `reported` (an id under `published` in
# src/clipxai/report/reported.yaml) and `value` (`lo`, `hi`: its 95% CI), on the fraction scale: the report
# adds the published value and the difference. Wrap the outputs in report(...) so `snakemake --report` shows them
# too.


# Seconds of work on small files: on a cluster they run on the head node rather than wait in a queue. (The
# saliency figures run a model, so they are cluster jobs.)
localrules:
    table_grounding,
    table_grounding_binding,
    table_zeroshot_shapes,
    figure_grounding,
    figure_grounding_bars,
    report,


# ---------------------------------------------------------------------------------------------------- tables


rule table_grounding:
    input:
        summaries=all_summaries(),
        entries=all_entry_scores(),
    output:
        csv=report(report_table("grounding"), caption="../report/snakemake/table_grounding.rst", category="Tables"),
        meta=sidecar(table_path("grounding")),
        exclusions=report(
            table_path("grounding_exclusions"), caption="../report/snakemake/table_grounding.rst", category="Tables"
        ),
        md="results/tables/grounding.md",
    log:
        log_path("table_grounding", "grounding"),
    benchmark:
        bench_path("table_grounding", "grounding")
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai table-grounding --summaries {input.summaries} --entries {input.entries} --out-csv {output.csv}"
        " --out-exclusions {output.exclusions} --out-md {output.md} 2> {log}"


rule table_grounding_binding:
    input:
        data=[f for d in binding_datasets() for f in dataset_inputs(d)],
        entries=all_entry_scores(binding_datasets()),
    output:
        csv=report(
            table_path("grounding_binding"),
            caption="../report/snakemake/table_grounding_binding.rst",
            category="Tables",
        ),
        meta=sidecar(table_path("grounding_binding")),
    log:
        log_path("table_grounding_binding", "grounding_binding"),
    benchmark:
        bench_path("table_grounding_binding", "grounding_binding")
    conda:
        "../envs/torch.yaml"
    params:
        data=" ".join(f"{d}={dataset_root(d)}" for d in binding_datasets()),
        split=data_split(binding_datasets()[0]) if binding_datasets() else "val",
        seed=config["seed"],
        bootstrap=config["grounding"]["bootstrap"],
    shell:
        "python -m clipxai table-binding --data {params.data} --split {params.split} --entries {input.entries}"
        " --seed {params.seed} --bootstrap {params.bootstrap} --out {output.csv} 2> {log}"


if binding_datasets():
    report_table("grounding_binding")


rule table_zeroshot_shapes:
    input:
        all_zeroshot(),
    output:
        csv=report(
            table_path("zeroshot_shapes"), caption="../report/snakemake/table_zeroshot_shapes.rst", category="Tables"
        ),
        meta=sidecar(table_path("zeroshot_shapes")),
    log:
        log_path("table_zeroshot_shapes", "zeroshot_shapes"),
    benchmark:
        bench_path("table_zeroshot_shapes", "zeroshot_shapes")
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai table-zeroshot-shapes --results {input} --out {output.csv} 2> {log}"


if all_zeroshot():
    report_table("zeroshot_shapes")


# ---------------------------------------------------------------------------------------------------- figures


rule figure_grounding_bars:
    input:
        table_path("grounding"),
    output:
        png=report(report_figure("grounding_bars"), caption="../report/snakemake/figure.rst", category="Figures"),
        pdf=figure_path("grounding_bars").replace(".png", ".pdf"),
        meta=sidecar(figure_path("grounding_bars")),
    log:
        log_path("figure_grounding_bars", "grounding_bars"),
    benchmark:
        bench_path("figure_grounding_bars", "grounding_bars")
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipxai figure-grounding-bars --table {input} --out {output.png} 2> {log}"


rule figure_grounding:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        maps=lambda wc: [maps_npz(wc.dataset, wc.model, m, 0) for m in figure_methods()],
    output:
        png=report(
            figure_path("grounding_examples_{dataset}_{model}"),
            caption="../report/snakemake/figure.rst",
            category="Figures",
            subcategory="{dataset} / {model}",
        ),
        pdf="results/figures/grounding_examples_{dataset}_{model}.pdf",
        meta=sidecar(figure_path("grounding_examples_{dataset}_{model}")),
    log:
        log_path("figure_grounding", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_grounding", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: data_split(wc.dataset),
        labels=" ".join(figure_methods()),
        n=REPORT_CONFIG.get("qualitative", 6),
    shell:
        "python -m clipxai figure-grounding --data {params.root} --split {params.split} --maps {input.maps}"
        " --labels {params.labels} --n {params.n} --out {output.png} 2> {log}"


for _d in GROUNDING["datasets"]:
    for _m in GROUNDING["models"]:
        report_figure(f"grounding_examples_{_d}_{_m}")


rule figure_layers:
    input:
        saliency_inputs,
    output:
        **saliency_rule_outputs("layers"),
    log:
        log_path("figure_layers", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_layers", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **SALIENCY_PARAMS,
    shell:
        "python -m clipxai figure-layers --data {params.root} --split {params.split} {params.model} --n {params.n}"
        " --label {params.label:q} --threads {threads} --out {output.png} 2> {log}"


rule figure_methods:
    input:
        saliency_inputs,
    output:
        **saliency_rule_outputs("methods"),
    log:
        log_path("figure_methods", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_methods", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **SALIENCY_PARAMS,
    shell:
        "python -m clipxai figure-methods --data {params.root} --split {params.split} {params.model} --n {params.n}"
        " --label {params.label:q} --threads {threads} --out {output.png} 2> {log}"


rule figure_polarity:
    input:
        saliency_inputs,
    output:
        **saliency_rule_outputs("polarity"),
    log:
        log_path("figure_polarity", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_polarity", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **SALIENCY_PARAMS,
    shell:
        "python -m clipxai figure-polarity --data {params.root} --split {params.split} {params.model} --n {params.n}"
        " --label {params.label:q} --threads {threads} --out {output.png} 2> {log}"


rule figure_perword:
    input:
        saliency_inputs,
    output:
        **saliency_rule_outputs("perword"),
    log:
        log_path("figure_perword", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_perword", "{dataset}", "{model}")
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        **SALIENCY_PARAMS,
    shell:
        "python -m clipxai figure-perword --data {params.root} --split {params.split} {params.model} --n {params.n}"
        " --label {params.label:q} --threads {threads} --out {output.png} 2> {log}"


for _kind in ("layers", "methods", "polarity", "perword"):
    for _d in GROUNDING["datasets"]:
        for _m in SALIENCY_MODELS:
            report_figure(f"saliency_{_kind}_{_d}_{_m}")


# ---------------------------------------------------------------------------------------------------- report


rule report:
    input:
        # functions: tables and figures declared by rule files included after this one are collected too
        tables=lambda wc: REPORT_TABLES,
        figures=lambda wc: REPORT_FIGURES,
        sidecars=lambda wc: [sidecar(p) for p in REPORT_TABLES + REPORT_FIGURES],
        reported=workflow.source_path("../src/clipxai/report/reported.yaml"),
        templates=[
            workflow.source_path("../src/clipxai/report/templates/index.html.j2"),
            workflow.source_path("../src/clipxai/report/templates/style.css"),
        ],
        training=[f"{model_dir(m)}/train_summary.json" for m in GROUNDING["models"] if MODELS[m]["kind"] == "toy"],
        data=report_checksummed_inputs,
    output:
        report(
            directory(report_dir()),
            htmlindex="index.html",
            caption="../report/snakemake/report.rst",
            category="Report",
        ),
    log:
        log_path("report", "index"),
    benchmark:
        bench_path("report", "index")
    conda:
        "../envs/report.yaml"
    params:
        config=lambda wc: shlex.quote(json.dumps(config, sort_keys=False)),
        templates=lambda wc, input: os.path.dirname(input.templates[0]),
        folders=lambda wc: " ".join(shlex.quote(f) for f in report_checksummed_folders()),
    shell:
        "python -m clipxai report --config-json {params.config} --reported {input.reported} --tables {input.tables}"
        " --figures {input.figures} --train-summaries {input.training} --inputs {input.data}"
        " --checksum-dirs {params.folders} --benchmarks-dir benchmarks --template-dir {params.templates} --out-dir {output} 2> {log}"
