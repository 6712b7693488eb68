# clipxai: reproduce, check and extend published results on how CLIP models ground language in images.
# The embedded default (config.yaml) runs here on a CPU in minutes; config/paper.yaml is the full reproduction.
# Every rule is thin: it calls the `clipxai` command (src/clipxai), logs to logs/ and times itself to benchmarks/.

import os
import shlex
import sys

import yaml

from snakemake.utils import min_version

min_version("9.0")

# Jobs run `python -m clipxai` from this source tree: with `--sdm conda` the envs/ hold only its dependencies, and
# without it `python` is the interpreter running Snakemake (a venv's, whether or not it is activated). PYTHONPATH
# goes into each job's command because Snakemake strips it from the environment of conda jobs.
os.environ.update(PATH=os.pathsep.join(filter(None, [os.path.dirname(sys.executable), os.environ.get("PATH")])))
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={shlex.quote(os.path.join(workflow.basedir, 'src'))}"
    "${{PYTHONPATH:+:$PYTHONPATH}}; "
)


# Parsing needs only clipxai's torch-free helpers (config checks, paths): this checkout's src/ goes first on
# sys.path, so a plain Snakemake without clipxai installed (a head node, the workflow catalog's checks) parses it.
sys.path.insert(0, os.path.join(workflow.basedir, "src"))

# `--configfile FILE`: a complete configuration (every required top-level key of the schema, e.g.
# config/paper.yaml) stands alone; a file lacking any of them is an overlay, merged key by key onto config.yaml
# (Snakemake's habit). Without --configfile the embedded default config.yaml runs. config/README.md explains.
with open(os.path.join(workflow.basedir, "src", "clipxai", "schemas", "config.schema.yaml")) as _schema:
    CONFIG_REQUIRED = yaml.safe_load(_schema)["required"]
# (config.yaml is found beside this Snakefile, whatever the working directory.)
if not all(key in config for key in CONFIG_REQUIRED):

    configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/common_report.smk"
include: "rules/common_segmentation.smk"
include: "rules/common_heads.smk"
include: "rules/common_faithfulness.smk"
include: "rules/common_similarity.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/attribute.smk"
include: "rules/score.smk"
include: "rules/report.smk"
include: "rules/segmentation.smk"
include: "rules/heads.smk"
include: "rules/faithfulness.smk"
include: "rules/similarity.smk"


rule all:
    default_target: True
    input:
        report_dir(),
        segmentation_targets(),
        heads_targets(),
