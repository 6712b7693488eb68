"""Verb ``select-heads``: choose heads whose TextSpan texts name places / backgrounds (clipxai.protocols.selection).

Reads a TextSpan heads CSV (``clipxai explain-heads --algorithm textspan``) and writes one row per head: how many of
its texts matched the words, the variance share they explain, which texts and words matched, and whether the
head is selected.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from clipxai.errors import InputError
from clipxai.io import write_csv
from clipxai.commands import _args

NAME = "select-heads"
HELP = "select heads whose TextSpan texts contain given words (e.g. places, for Waterbirds)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heads", required=True, help="TextSpan heads CSV (explain-heads)")
    parser.add_argument("--words", nargs="+", action="extend", required=True,
                        help="words that mark a text as about place / "
                        "background (whole words, case-insensitive)")
    parser.add_argument("--min-texts", type=int, default=1, help="texts of a head that must match (default 1)")
    parser.add_argument("--max-heads", type=int, default=0, help="keep at most this many, by matching variance "
                        "share (0 = no limit)")
    _args.add_output(parser, "--out", required=True, help="output CSV, one row per head")


def read_heads(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(path, "(file)", f"a heads CSV written by `clipxai explain-heads` ({err})") from None


def run(args: argparse.Namespace) -> int:
    from clipxai.protocols.selection import select_heads

    heads = read_heads(args.heads)
    principal_rows = (("side" in heads.columns and (heads["side"] != "top").any())
                      or ("position" in heads.columns and (heads["position"] != 0).any()))
    if principal_rows:
        raise InputError(args.heads, "side/position", "a TextSpan table (one text per rank), not principal "
                         "components' top/bottom texts")
    table = select_heads(heads, args.words, args.min_texts, args.max_heads)
    write_csv(args.out, table)
    chosen = table[table["selected"]]
    log.info("selected %d of %d heads: %s", len(chosen), len(table),
             ", ".join(f"L{r.layer}.H{r.head} ({r.matched_words})" for r in chosen.itertuples()) or "none")
    return 0
