"""Measure Lynkr's offline token estimate against an independent tokenizer.

No real Anthropic counts are available offline, so the reference is OpenAI's o200k_base
(and cl100k_base) run by tiktoken from the vocabulary files the `bpe-openai` wheel ships
(`pip install bpe-openai`; nothing is downloaded). The numbers say how far two good BPE
vocabularies disagree on this text; they are not the error against Claude's counter.

    python tools/measure_token_estimate.py [FILE …]   # default: docs and sources here
"""

from __future__ import annotations

import base64
import gzip
import sys
from importlib import resources
from pathlib import Path

import tiktoken

from lynkr.providers import count_text_tokens

ROOT = Path(__file__).resolve().parents[1]
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""", r"""\s+""",
])
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}"""
                   r"""\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")


def _encoding(name: str, pattern: str) -> tiktoken.Encoding:
    data = resources.files("bpe_openai.data").joinpath(f"{name}.tiktoken.gz").read_bytes()
    ranks = {}
    for line in gzip.decompress(data).splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens={})


def _samples(paths: list[str]) -> dict[str, str]:
    if paths:
        return {p: Path(p).read_text() for p in paths}
    shared = ROOT.parent / "shared"
    files = [*sorted(shared.glob("*.md")), *sorted((ROOT / "lynkr").rglob("*.py"))]
    return {str(f.relative_to(f.parents[1])): f.read_text() for f in files if f.stat().st_size}


def main(argv: list[str]) -> int:
    """Print per-sample and total relative differences."""
    refs = {"o200k": _encoding("o200k_base", _O200K_PATTERN),
            "cl100k": _encoding("cl100k_base", _CL100K_PATTERN)}
    totals = {"lynkr": 0, **{k: 0 for k in refs}}
    diffs: dict[str, list[float]] = {k: [] for k in refs}
    for _name, text in _samples(argv).items():
        ours = count_text_tokens(text)
        totals["lynkr"] += ours
        for key, enc in refs.items():
            theirs = len(enc.encode_ordinary(text))
            totals[key] += theirs
            diffs[key].append(abs(ours - theirs) / max(theirs, 1))
    print(f"samples: {len(diffs['o200k'])}, chars: {sum(map(len, _samples(argv).values()))}")
    for key in refs:
        d = sorted(diffs[key])
        print(f"vs {key}: total {totals['lynkr']} vs {totals[key]} "
              f"({(totals['lynkr'] - totals[key]) / totals[key]:+.1%}); per-sample |diff| "
              f"median {d[len(d) // 2]:.1%}, p90 {d[int(len(d) * 0.9)]:.1%}, max {d[-1]:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
