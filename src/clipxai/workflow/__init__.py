"""The Snakemake workflow's logic as plain, torch-free Python: its config checks (checks), every path pattern
(paths) and what it runs for a config (plan). rules/*.smk are thin wrappers of these."""
