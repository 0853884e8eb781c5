"""Make tests/data/bold_subset.tsv.gz: a few hundred real records for the benchmark's CI test.

From the project's real corpus (../shared/data/bold_insect_coi5p_108k.tsv.gz, BOLD public
records, CC BY-SA 4.0): 6 genera with at least 4 species of at least 12 records each; 4
species per genus (alphabetical), 12 records per species (the first by processid). Enough
for the BIOSCAN-5M partition to give every split, with some species held out as unseen.

    python tests/data/make_bold_subset.py ../shared/data/bold_insect_coi5p_108k.tsv.gz
"""
import gzip
import sys
from pathlib import Path

import pandas as pd

src = sys.argv[1]
df = pd.read_csv(src, sep="\t", dtype=str, keep_default_na=False)
df = df[(df["species"] != "") & (df["genus"] != "")].sort_values("processid")
counts = df.groupby(["genus", "species"]).size()
rich = counts[counts >= 12].reset_index()
genera = sorted(g for g, n in rich.groupby("genus").size().items() if n >= 4)[:6]
keep = []
for g in genera:
    for sp in sorted(rich[rich.genus == g].species)[:4]:
        keep.append(df[(df.genus == g) & (df.species == sp)].head(12))
out = pd.concat(keep)
path = Path(__file__).with_name("bold_subset.tsv.gz")
with gzip.GzipFile(path, "wb", mtime=0) as fh:
    fh.write(out.to_csv(sep="\t", index=False).encode())
print(f"{len(out)} records, {out.species.nunique()} species, {out.genus.nunique()} genera -> {path}")
