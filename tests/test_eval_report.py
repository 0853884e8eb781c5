"""The UMAP figure: labelled axes, a colour per class up to a palette of distinct colours,
the rest grouped as "other", the legend outside the axes, a title that says what was
embedded and how many points."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from bioscan_kmer.eval.report import figure_title, umap_axes, umap_figure


def _classes(sizes, seed=0):
    """Labels with the given class sizes (one class unlabelled when its name is "")."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[name] * n for name, n in sizes.items()])
    emb = rng.normal(size=(labels.size, 2)) + rng.normal(size=(len(sizes), 2)).repeat(list(sizes.values()), 0) * 8
    return emb, labels


def _draw(emb, labels, **kw):
    fig = Figure(figsize=(9, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = umap_axes(fig, emb, labels, **kw)
    fig.canvas.draw()
    return fig, ax


def test_many_classes_get_distinct_colours_and_the_rest_is_other():
    # 30 orders of very different sizes (a BIOSCAN-like tail) plus unlabelled points.
    sizes = {f"Order{i:02d}": max(3, 3000 // (i + 1) ** 2) for i in range(30)}
    sizes[""] = 40
    emb, labels = _classes(sizes)
    fig, ax = _draw(emb, labels, title="t")
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == 15 and texts[0] == "Order00 (3,000)"
    assert texts[-1].startswith("16 other orders / unlabelled (")
    # Named colours are far apart in RGB and from grey (the 11 tab20 colours used before had
    # pairs 0.15 apart, light and dark shades of one hue).
    colours = [to_rgb(h.get_facecolor()[0]) for h in legend.legend_handles]
    named, other = np.array(colours[:-1]), np.array(colours[-1])
    gaps = np.linalg.norm(named[:, None] - named[None], axis=-1)[np.triu_indices(len(named), 1)]
    assert gaps.min() > 0.2, gaps.min()
    assert np.linalg.norm(named - other, axis=1).min() > 0.2
    assert np.allclose(other, other[0])  # grey
    # Every point is drawn once; the biggest class first, so small ones lie on top.
    counts = [c.get_offsets().shape[0] for c in ax.collections]
    assert sum(counts) == labels.size
    assert counts[1:] == sorted(counts[1:], reverse=True)  # after "other", largest first
    # Small classes get bigger, opaque markers; the big one translucent.
    big, small = ax.collections[1], ax.collections[-1]
    assert small.get_sizes()[0] > big.get_sizes()[0] and small.get_alpha() > big.get_alpha()


def test_axes_are_labelled_and_the_legend_is_outside():
    emb, labels = _classes({"Diptera": 500, "Hymenoptera": 80, "Araneae": 5})
    fig, ax = _draw(emb, labels, title="my title")
    assert ax.get_xlabel() == "UMAP 1" and ax.get_ylabel() == "UMAP 2" and ax.get_title() == "my title"
    renderer = fig.canvas.get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    axes_box = ax.get_window_extent(renderer)
    assert legend_box.x0 >= axes_box.x1  # right of the axes: it covers no point
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Diptera (500)", "Hymenoptera (80)", "Araneae (5)"]
    assert len(ax.collections) == 3  # few classes: no "other"


def test_title_says_what_was_embedded_and_how_many_points(tmp_path):
    fig = {"embedding": np.zeros((3000, 2)), "order": np.array(["A"] * 3000), "model": "checkpoint.pt",
           "n_total": 12000, "splits": ("test", "test_unseen")}
    title = figure_title(fig)
    assert "checkpoint.pt" in title and "3,000 barcodes of test + test_unseen" in title
    assert "a seeded sample of 12,000" in title and "order" in title
    assert "sample" not in figure_title({**fig, "n_total": 3000, "splits": ("test",)})
    path = umap_figure(fig["embedding"] + np.arange(3000)[:, None], fig["order"], tmp_path / "u.png", title=title)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="n labels"):
        umap_figure(np.zeros((3, 2)), ["a"], tmp_path / "bad.png")
