# Tables, figures and the report: one rule per table and per figure, each tracing back to its result files.


rule table_grounding:
    input:
        all_summaries(),
    output:
        csv="results/tables/grounding.csv",
        md="results/tables/grounding.md",
    log:
        log_path("table_grounding", "grounding"),
    benchmark:
        bench_path("table_grounding", "grounding")
    shell:
        "{CLIPXAI} table-grounding --summaries {input} --out-csv {output.csv} --out-md {output.md} 2> {log}"


def figure_methods():
    """The methods shown side by side in the qualitative figure (those configured, in config order)."""
    return [m for m in METHODS if METHODS[m][0] != "random"]


rule figure_grounding:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        maps=lambda wc: [maps_npz(wc.dataset, wc.model, m, 0) for m in figure_methods()],
    output:
        png="results/figures/grounding_examples_{dataset}_{model}.png",
        pdf="results/figures/grounding_examples_{dataset}_{model}.pdf",
        caption="results/figures/grounding_examples_{dataset}_{model}.json",
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: DATASETS[wc.dataset].get("split", "val"),
        labels=" ".join(figure_methods()),
        n=config["report"]["qualitative"],
    log:
        log_path("figure_grounding", "{dataset}", "{model}"),
    benchmark:
        bench_path("figure_grounding", "{dataset}", "{model}")
    shell:
        "{CLIPXAI} figure-grounding --data {params.root} --split {params.split} --maps {input.maps}"
        " --labels {params.labels} --n {params.n} --out {output.png} 2> {log}"


def report_figures():
    return [f"results/figures/grounding_examples_{d}_{m}.png" for d in GROUNDING["datasets"]
            for m in GROUNDING["models"]]


rule report:
    input:
        table="results/tables/grounding.csv",
        reported=workflow.source_path("../report/reported.yaml"),
        zeroshot=all_zeroshot(),
        figures=report_figures(),
        training=[f"{model_dir(m)}/train_summary.json" for m in GROUNDING["models"] if MODELS[m]["kind"] == "toy"],
        data=[png_json(d, DATASETS[d].get("split", "val")) for d in GROUNDING["datasets"]],
    output:
        report_html(),
    params:
        config=lambda wc: shlex.quote(json.dumps(config, sort_keys=False)),
        templates=workflow.source_path("../report/templates/index.html.j2").rsplit("/", 1)[0],
    log:
        log_path("report", "index"),
    benchmark:
        bench_path("report", "index")
    shell:
        "{CLIPXAI} report --config-json {params.config} --reported {input.reported}"
        " --grounding-table {input.table} --zeroshot {input.zeroshot} --train-summaries {input.training}"
        " --figures {input.figures} --inputs {input.data} --template-dir {params.templates}"
        " --benchmarks $(find benchmarks -name '*.tsv' | sort) --out {output} 2> {log}"
