"""The cleaning a Python user writes with str methods: the baseline of `clean`."""
import re

_IUPAC = str.maketrans("RYSWKMBDHV", "NNNNNNNNNN", "- \t\n\r")
_BAD = re.compile(r"[^ACGTN]")


def clean(seq: str) -> str:
    s = seq.upper().replace("U", "T").translate(_IUPAC)
    m = _BAD.search(s)
    if m:
        raise ValueError(f"invalid character {m.group()!r}")
    return s.strip("N")
