"""The HTML report of a run (verb ``clipxai report``): published numbers (reported), table layouts (layouts),
provenance of the page (provenance) and the page itself (render). Reads result files only: no model code, no torch
(the report's conda environment, envs/report.yaml, has neither). Package data: reported.yaml, templates/.
"""
