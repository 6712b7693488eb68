"""The nearest-neighbours figure of ``clipxai figure-neighbours``: a row per query image (red frame) and its
neighbours in one head's output space, each captioned with its similarity and class name."""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def neighbours_figure(queries: Sequence[int], neighbours: np.ndarray, similarity: np.ndarray,
                      image_of: Callable[[int], np.ndarray], name_of: Callable[[int], str], title: str):
    """The figure (not saved): ``image_of``/``name_of`` give a row's image and class name."""
    cols = 1 + neighbours.shape[1]
    fig, axes = plt.subplots(len(queries), cols, figsize=(1.7 * cols, 1.9 * len(queries)), squeeze=False)
    for r, query in enumerate(queries):
        panels = [(query, "query\n" + name_of(query))] + [
            (int(n), f"{s:.2f}\n{name_of(int(n))}") for n, s in zip(neighbours[r], similarity[r])]
        for c, (row, caption) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(image_of(row))
            ax.set_title(caption, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:red")
                    spine.set_linewidth(2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
