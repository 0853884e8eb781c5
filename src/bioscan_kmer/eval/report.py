"""The benchmark table (Markdown + CSV), the detailed metrics and the UMAP figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["TABLE_COLUMNS", "build_table", "build_details", "to_markdown", "write_report", "umap_figure"]

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
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _md_table(df: pd.DataFrame, digits=2) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for _, row in df.iterrows():
        cells = [str(row[cols[0]])] + [_fmt(row[c], digits) if not isinstance(row[c], str) else row[c] for c in cols[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(run: dict, *, title: str = "Benchmark") -> str:
    """The main table, per-rank clustering and retrieval tables, notes and timings."""
    table = build_table(run)
    parts = [f"## {title}", "", "Accuracies in percent (micro average: fraction of records); AMI x 100.", "",
             _md_table(table), ""]
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
        parts += ["### Zero-shot clustering AMI per rank (x 100)", "", _md_table(pd.DataFrame(ami_rows)), ""]
    if ret_rows:
        parts += ["### DNA-to-DNA retrieval (micro / macro %, keys = train + key_unseen)", "",
                  _md_table(pd.DataFrame(ret_rows)), ""]
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


def umap_figure(embedding, labels, path, *, title: str = "UMAP of embeddings", max_legend: int = 12) -> Path:
    """Scatter plot of 2-D UMAP coordinates coloured by label (e.g. order), as PNG.

    The ``max_legend - 1`` most frequent labels get their own colour; the rest are grey.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    emb = np.asarray(embedding)
    labels = np.asarray(labels).astype(str)
    if emb.ndim != 2 or emb.shape[1] != 2 or emb.shape[0] != labels.shape[0]:
        raise ValueError(f"embedding must be (n, 2) with n labels, got {emb.shape} and {labels.shape}")
    names, counts = np.unique(labels, return_counts=True)
    top = [n for n in names[np.argsort(-counts, kind="stable")] if n not in ("", "None", "nan")][: max_legend - 1]
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    other = ~np.isin(labels, top)
    if other.any():
        ax.scatter(emb[other, 0], emb[other, 1], s=3, c="lightgrey", label="other / unlabelled", rasterized=True)
    cmap = plt.get_cmap("tab10" if len(top) <= 10 else "tab20")
    for i, name in enumerate(top):
        m = labels == name
        ax.scatter(emb[m, 0], emb[m, 1], s=3, color=cmap(i % cmap.N), label=f"{name} ({m.sum()})", rasterized=True)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=4, fontsize=7, loc="best", frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


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
                                      title=f"{fig['model']}: test + test_unseen, coloured by order")
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
