"""The benchmark table (Markdown + CSV), the detailed metrics and the UMAP figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TABLE_COLUMNS", "markdown_table", "build_table", "build_details", "to_markdown", "write_report", "umap_figure",
           "umap_axes", "figure_title"]

#: Columns of the main table (percent), after the model name.
TABLE_COLUMNS = (
    "fine-tuned species",
    "linear probe species",
    "1-NN genus unseen",
    "clustering AMI species",
    "retrieval species top-1 seen",
    "retrieval species top-1 unseen",
)


def _pct(x):
    return float("nan") if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * float(x)


def _retrieval_value(records, queries, rank, k, average):
    for r in records or ():
        if r["queries"] == queries and r["rank"] == rank and r["k"] == k and r["average"] == average:
            return r["value"]
    return None


def build_table(run: dict) -> pd.DataFrame:
    """One row per model, the columns of :data:`TABLE_COLUMNS` in percent (NaN = not run).

    Accuracies are micro-averaged (fraction of test records), as in the paper; the
    detailed table has the macro averages too.
    """
    rows = []
    for name, res in run["results"].items():
        ft = res.get("fine_tuned", {})
        lp = res.get("linear_probe", {})
        nn = res.get("knn_genus_unseen", {})
        cl = res.get("clustering", {})
        rt = res.get("retrieval")
        rows.append({
            "model": name,
            "fine-tuned species": _pct(ft.get("accuracy_micro")),
            "linear probe species": _pct(lp.get("accuracy_micro")),
            "1-NN genus unseen": _pct(nn.get("accuracy_micro")),
            "clustering AMI species": _pct(cl.get("ami", {}).get("species")),
            "retrieval species top-1 seen": _pct(_retrieval_value(rt, "seen", "species", 1, "micro")),
            "retrieval species top-1 unseen": _pct(_retrieval_value(rt, "unseen", "species", 1, "micro")),
        })
    return pd.DataFrame(rows, columns=["model", *TABLE_COLUMNS])


def build_details(run: dict) -> pd.DataFrame:
    """Every number of the run in long form: model, probe, metric, value, n.

    Values are fractions (accuracy, AMI), seconds (timings) or counts, as the ``metric``
    name says.
    """
    rows = []
    for name, res in run["results"].items():
        for probe in ("fine_tuned", "linear_probe", "knn_genus_unseen"):
            for key, value in res.get(probe, {}).items():
                if isinstance(value, (int, float, np.integer, np.floating)):
                    rows.append({"model": name, "probe": probe, "metric": key, "value": float(value)})
        cl = res.get("clustering")
        if cl:
            for rank, value in cl["ami"].items():
                rows.append({"model": name, "probe": "clustering", "metric": f"ami_{rank}", "value": value})
            for rank, value in cl["n_clusters"].items():
                rows.append({"model": name, "probe": "clustering", "metric": f"n_clusters_{rank}", "value": float(value)})
            rows.append({"model": name, "probe": "clustering", "metric": "n_points", "value": float(cl["n_points"])})
        for r in res.get("retrieval") or ():
            rows.append({"model": name, "probe": f"retrieval_{r['queries']}",
                         "metric": f"{r['rank']}_top{r['k']}_{r['average']}", "value": r["value"]})
        for key, value in res.get("timings", {}).items():
            rows.append({"model": name, "probe": "timing", "metric": f"{key}_s", "value": value})
        if "features_per_s" in res:
            rows.append({"model": name, "probe": "timing", "metric": "features_per_s", "value": res["features_per_s"]})
    return pd.DataFrame(rows, columns=["model", "probe", "metric", "value"])


def _fmt(x, digits=2):
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return f"{int(x):,}"
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def markdown_table(df: pd.DataFrame, digits=2) -> str:
    """``df`` as a Markdown table: the first column as text, numbers right-aligned (floats
    with ``digits`` decimals, integers with thousands separators, NaN as ``-``)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for i in range(len(df)):
        # Column by column: a row (iterrows) would turn an int column into floats.
        row = [df[c].iloc[i] for c in cols]
        cells = [str(row[0])] + [v if isinstance(v, str) else _fmt(v, digits) for v in row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(run: dict, *, title: str = "Benchmark") -> str:
    """The main table, per-rank clustering and retrieval tables, notes and timings."""
    table = build_table(run)
    parts = [f"## {title}", "", "Accuracies in percent (micro average: fraction of records); AMI x 100.", "",
             markdown_table(table), ""]
    ranks = tuple(run["settings"].ranks)
    # Per-rank clustering AMI and retrieval top-1 (micro / macro).
    ami_rows, ret_rows = [], []
    for name, res in run["results"].items():
        cl = res.get("clustering")
        if cl:
            ami_rows.append({"model": name, **{r: _pct(cl["ami"].get(r)) for r in ranks}})
        rt = res.get("retrieval")
        if rt:
            for q in ("seen", "unseen"):
                row = {"model": name, "queries": q}
                for r in ranks:
                    for k in (1, 3, 5):
                        mi = _retrieval_value(rt, q, r, k, "micro")
                        ma = _retrieval_value(rt, q, r, k, "macro")
                        row[f"{r} top-{k}"] = f"{_fmt(_pct(mi), 1)} / {_fmt(_pct(ma), 1)}"
                ret_rows.append(row)
    if ami_rows:
        parts += ["### Zero-shot clustering AMI per rank (x 100)", "", markdown_table(pd.DataFrame(ami_rows)), ""]
    if ret_rows:
        parts += ["### DNA-to-DNA retrieval (micro / macro %, keys = train + key_unseen)", "",
                  markdown_table(pd.DataFrame(ret_rows)), ""]
    sizes = run.get("sizes", {})
    notes = list(run.get("notes", []))
    if sizes:
        notes.insert(0, "records used: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    for name, res in run["results"].items():
        for n in res.get("notes", []):
            notes.append(f"{name}: {n}")
        t = res.get("timings", {})
        if t:
            notes.append(f"{name} timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    if notes:
        parts += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)


#: Qualitative colours that stay distinct from each other and from the grey of "other":
#: matplotlib's tab10 (colour-blind friendly) when it is enough, else 15 strong colours
#: (after Trubetskoy's list) without tab20's light/dark pairs, two blues a reader cannot
#: tell apart, nor pastels that vanish on white when a small class gets them.
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_DISTINCT = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
             "#9a6324", "#469990", "#000075", "#808000", "#800000", "#bfef45", "#e6ab02", "#000000")
_OTHER = "#c8c8c8"
_MISSING = ("", "None", "nan", "<NA>")


def _palette(n_named: int):
    # tab10's grey would read as "other": skip it.
    return [c for c in _TAB10 if c != "#7f7f7f"] if n_named <= 9 else list(_DISTINCT)


def _point_style(n_points: int, n_class: int):
    """Marker area (pt^2) and opacity of one class's points in a scatter of ``n_points``.

    The area shrinks as the plot fills (25 for a few hundred points, 1 from 20,000 on),
    but a small class keeps markers of a few points' size; a big class is translucent so
    that its density shows, a small one opaque so that it is seen at all.
    """
    base = 2.0e4 / max(n_points, 1)
    size = float(np.clip(max(base, min(9.0, 2.0e3 / max(n_class, 1))), 1.0, 25.0))
    alpha = float(np.clip(1.0e3 / max(n_class, 1), 0.3, 0.95))
    return size, alpha


def umap_axes(fig, embedding, labels, *, title: str = "UMAP of embeddings", label_name: str = "order",
              max_named: int | None = None):
    """Draw the scatter of 2-D UMAP coordinates coloured by label on a matplotlib Figure.

    Marker size and opacity follow the number of points; the colour map follows the number
    of classes: each of the most frequent classes (up to ``max_named``, default as many as
    the palette has distinct colours) gets its own colour, the rest share a light grey
    "other" (unlabelled points too). Classes are drawn largest first, so that small ones
    stay visible on top. The legend (class name and point count) sits outside the axes.

    Returns
    -------
    matplotlib.axes.Axes
    """
    emb = np.asarray(embedding)
    labels = np.asarray(labels).astype(str)
    if emb.ndim != 2 or emb.shape[1] != 2 or emb.shape[0] != labels.shape[0]:
        raise ValueError(f"embedding must be (n, 2) with n labels, got {emb.shape} and {labels.shape}")
    names, counts = np.unique(labels, return_counts=True)
    ranked = [str(n) for n in names[np.argsort(-counts, kind="stable")] if n not in _MISSING]
    limit = len(_DISTINCT) if max_named is None else int(max_named)
    if limit < 1:
        raise ValueError(f"max_named must be positive, got {max_named}")
    named = ranked if len(ranked) <= limit else ranked[: limit - 1]  # one slot for "other"
    colours = _palette(len(named))
    n = emb.shape[0]

    ax = fig.add_subplot(1, 1, 1)
    other = ~np.isin(labels, named)
    sizes = []
    if other.any():
        n_other_classes = len(ranked) - len(named)
        what = f"{n_other_classes} other {label_name}s" if n_other_classes else "other"
        if (np.isin(labels, _MISSING)).any():
            what += " / unlabelled"
        size, alpha = _point_style(n, int(other.sum()))
        ax.scatter(emb[other, 0], emb[other, 1], s=size, c=_OTHER, alpha=alpha, linewidths=0,
                   label=f"{what} ({other.sum():,})", rasterized=True)
        sizes.append(size)
    for i, name in enumerate(named):
        m = labels == name
        size, alpha = _point_style(n, int(m.sum()))
        ax.scatter(emb[m, 0], emb[m, 1], s=size, color=colours[i], alpha=alpha, linewidths=0,
                   label=f"{name} ({m.sum():,})", rasterized=True)
        sizes.append(size)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_title(title, fontsize=10)
    handles, texts = ax.get_legend_handles_labels()
    if other.any():  # "other" was drawn first (underneath) but is listed last
        handles, texts = handles[1:] + handles[:1], texts[1:] + texts[:1]
    leg = ax.legend(handles, texts, title=label_name, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                    borderaxespad=0.0, fontsize=8, title_fontsize=9, frameon=False)
    for h in leg.legend_handles:  # every legend marker the same, opaque and readable
        h.set_alpha(1.0)
        h.set_sizes([30.0])
    return ax


def umap_figure(embedding, labels, path, *, title: str = "UMAP of embeddings", label_name: str = "order",
                max_named: int | None = None) -> Path:
    """Scatter plot of 2-D UMAP coordinates coloured by label (e.g. order), as PNG.

    See :func:`umap_axes` for the styling. Written atomically; no pyplot state is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .._atomic import replacing

    fig = Figure(figsize=(9, 6), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    umap_axes(fig, embedding, labels, title=title, label_name=label_name, max_named=max_named)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def figure_title(fig: dict) -> str:
    """What the UMAP figure shows: the model, the splits embedded and how many points."""
    n = len(fig["embedding"])
    total = fig.get("n_total", n)
    of = f" (a seeded sample of {total:,})" if total > n else ""
    splits = " + ".join(fig.get("splits", ("test", "test_unseen")))
    return (f"{fig['model']}: 2-D UMAP of its embeddings, coloured by order\n"
            f"{n:,} barcodes of {splits}{of}")


def write_report(run: dict, out_dir, *, title: str = "Benchmark") -> dict:
    """Write ``report.md``, ``report.csv`` (main table), ``details.csv``, ``settings.json``
    and, when the run has one, ``umap_order.png``.

    Returns
    -------
    dict
        ``{"markdown", "csv", "details", "settings", "figure"?}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    md = to_markdown(run, title=title)
    fig = run.get("figure")
    if fig is not None:
        paths["figure"] = umap_figure(fig["embedding"], fig["order"], out / "umap_order.png",
                                      title=figure_title(fig))
        md += f"\n![UMAP of {fig['model']} embeddings coloured by order](umap_order.png)\n"
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(md)
    paths["csv"] = out / "report.csv"
    build_table(run).to_csv(paths["csv"], index=False, float_format="%.4f")
    paths["details"] = out / "details.csv"
    build_details(run).to_csv(paths["details"], index=False, float_format="%.6g")
    paths["settings"] = out / "settings.json"
    settings = run["settings"]
    paths["settings"].write_text(json.dumps({k: getattr(settings, k) for k in settings.__dataclass_fields__},
                                            indent=2, default=str))
    return paths
