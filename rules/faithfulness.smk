# Faithfulness of the grounding maps: perturbation curves (deletion, insertion, negative) on both towers, their
# areas per method against random, and the mean curves. Reads the maps of rules/attribute.smk.


localrules:
    table_faithfulness,
    figure_faithfulness,


# One job per (data set, model) curving every method's maps (one model and data load), one CSV per method.
rule faithfulness:
    input:
        data=lambda wc: dataset_inputs(wc.dataset),
        model=lambda wc: model_files(wc.model),
        maps=lambda wc: [maps_npz(wc.dataset, wc.model, m, s) for m in METHODS for s in shards(wc.dataset)],
    output:
        [faithfulness_entries("{dataset}", "{model}", method) for method in METHODS],
    log:
        log_path("faithfulness", "{dataset}", "{model}"),
    benchmark:
        bench_path("faithfulness", "{dataset}", "{model}")
    priority: 1  # the longest job of the DAG after its maps: started first, it overlaps the rest instead of trailing
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=FAITHFULNESS_RUNTIME,
        gpu=gpu_request,
    params:
        root=lambda wc: dataset_root(wc.dataset),
        split=lambda wc: data_split(wc.dataset),
        model=lambda wc: model_args(wc.model),
        methods=" ".join(METHODS),
        pairs=lambda wc: faithfulness_pairs(wc.dataset, wc.model),
        steps=FAITHFULNESS.get("steps", 10),
        baseline=FAITHFULNESS.get("baseline", "mean"),
        max_entries=FAITHFULNESS.get("max_entries", 0),
        device=config["device"],
        batch_size=config["batch_size"],
    shell:
        "python -m clipxai faithfulness --data {params.root} --split {params.split} {params.model}"
        " --method {params.methods} {params.pairs} --steps {params.steps} --baseline {params.baseline}"
        " --max-entries {params.max_entries} --batch-size {params.batch_size} --device {params.device}"
        " --threads {threads} 2> {log}"


rule table_faithfulness:
    input:
        all_faithfulness_entries(),
    output:
        csv=report(table_path("faithfulness"), caption="../report/snakemake/figure.rst", category="Tables"),
        meta=sidecar(table_path("faithfulness")),
    log:
        log_path("table_faithfulness", "faithfulness"),
    benchmark:
        bench_path("table_faithfulness", "faithfulness")
    conda:
        "../envs/torch.yaml"
    params:
        random=FAITHFULNESS_RANDOM,
        seed=config["seed"],
        bootstrap=GROUNDING["bootstrap"],
    shell:
        "python -m clipxai table-faithfulness --entries {input} --random {params.random} --seed {params.seed}"
        " --bootstrap {params.bootstrap} --out {output.csv} 2> {log}"


rule figure_faithfulness:
    input:
        all_faithfulness_entries(),
    output:
        png=report(figure_path("faithfulness_curves"), caption="../report/snakemake/figure.rst", category="Figures"),
        pdf=figure_path("faithfulness_curves").replace(".png", ".pdf"),
        meta=sidecar(figure_path("faithfulness_curves")),
    log:
        log_path("figure_faithfulness", "faithfulness_curves"),
    benchmark:
        bench_path("figure_faithfulness", "faithfulness_curves")
    conda:
        "../envs/torch.yaml"
    shell:
        "python -m clipxai figure-faithfulness --entries {input} --out {output.png} 2> {log}"


if all_faithfulness_entries():
    report_table("faithfulness")
    report_figure("faithfulness_curves")
