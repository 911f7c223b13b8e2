"""True labels: no GPT-2 (or "12-layer") label beside a row that another backbone produced, in any
committed notebook output or the README. The paper's numbers labelled as the paper's ("paper
(GPT-2)", "the paper's FPT: pretrained GPT-2 ...", a paper value's own note "72.1 (GPT-2 large)")
and rows GPT-2 itself produced are fine."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABEL = re.compile(r"GPT-2|12-layer")
# a row another backbone produced: the backbone's name as the records give it
OTHER = re.compile(r"\b(minilm|smollm2|lstm \(|bert-base)", re.IGNORECASE)
ALLOWED = [re.compile(p) for p in (
    r"[Tt]he (?:paper|critique)'s[^.|\n]*",              # "The paper's FPT: pretrained GPT-2 ...": said to be the paper's
    r"paper[^|\n]*?\([^)|\n]*\)",                       # "paper (GPT-2)", "critique paper (GPT-2)": a paper label
    r"[\d.]+ \([^)|\n]*GPT-2[^)|\n]*\)",                # "72.1 (GPT-2 large; base 68.2)": a paper value's note
    r"\((?:the )?paper's[^)\n]*\)",
    r"\b(?:not|than|paper used|paper:) (?:the paper's )?GPT-2",   # "not GPT-2", "faster than GPT-2"
    r"(?:T5|Longformer|BERT), [^|\n]*GPT-2",            # the paper's backbone rows named as left out
    # notebook 01's parameter counts: rows GPT-2's own architecture produced (built from its configuration)
    r"GPT-2 small(?: \(random weights, for counting\)|, tokens of 16 values)",
)]


def sources():
    """(where, text) of every output of every committed notebook, and the README."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                text = out.get("text") or data.get("text/markdown") or data.get("text/plain") or ""
                yield f"{path.name} cell {i}", "".join(text) if isinstance(text, list) else text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for i, block in enumerate(readme.split("\n\n")):       # a table or a paragraph at a time
        if "±" in block or "%" in block and block.lstrip().startswith(("|", "**")):     # results, not prose
            yield f"README.md block {i}", block


def mislabelled(text: str) -> list[str]:
    """Lines of ``text`` that put a GPT-2 / 12-layer label beside rows another backbone produced."""
    if not OTHER.search(text):
        return []
    bad = []
    for line in text.splitlines():
        if re.search(r"\bgpt2\b", line):          # a row GPT-2 itself produced (its id, as the records say)
            continue
        rest = line
        for pattern in ALLOWED:
            rest = pattern.sub("", rest)
        if LABEL.search(rest):
            bad.append(line.strip()[:160])
    return bad


def test_the_checker_catches_a_gpt2_caption_under_minilm_rows_and_spares_the_papers_labels():
    rows = "| FPT | Bit XOR | 100.0 | minilm (pretrained), freeze fpt |\n"
    assert mislabelled(rows + "FPT: pretrained GPT-2 with attention and feed-forward frozen.")
    assert mislabelled("**Table 2: initialisation of the frozen 12-layer transformer**\n" + rows)
    assert not mislabelled(rows + "The paper's FPT: pretrained GPT-2 with attention and feed-forward frozen.")
    assert not mislabelled(rows + "The paper's rows: the same frozen 12-layer architecture: language (GPT-2), random.")
    assert not mislabelled("| FPT | CIFAR-10 | 72.1 (GPT-2 large; base 68.2) | minilm (pretrained) |\n"
                           "| claim | FPT 100 vs Full LSTM 60.9 (paper (GPT-2)) | minilm |")
    assert not mislabelled("FPT: pretrained GPT-2 with attention and feed-forward frozen.")   # no other rows


@pytest.mark.parametrize("where,text", list(sources()), ids=lambda x: x if isinstance(x, str) and len(x) < 60 else "")
def test_no_gpt2_label_beside_rows_another_backbone_produced(where, text):
    bad = mislabelled(text)
    assert not bad, f"{where}: a GPT-2 / 12-layer label beside rows of another backbone: {bad[:3]}"


def _size_records(family):
    from test_claims import record
    from fptlib import experiments
    out = []
    for c in experiments.table("model_size", "evidence", "minilm"):
        r = record(c, (0.90 if c.row == "large" else 0.70) + 0.01 * c.seed, profile="evidence")
        r["backbone"]["family"] = family
        r["run_config"] = {"layers": c.layers}
        out.append(r)
    return out


def test_titles_name_the_backbones_that_ran_and_model_size_rows_say_depth():
    from fptlib import paper, report
    t = report.paper_table("model_size", "evidence", records=_size_records("bert"), backbone="minilm", baselines=False)
    assert "this course's rows: minilm (2 layers), minilm (4 layers)" in t.title and "GPT-2" not in t.title
    assert t.rows[0]["setting"] == "small (here: minilm (2 layers), depth standing in for size)"
    assert not mislabelled(t.markdown())
    size = paper.claim("model-size")
    offline = next(r for r in report.claims("evidence", records=_size_records("bert"), backbone="minilm").rows
                   if r["claim"] == size.text)
    assert offline["verdict"] == "not run here" and "compare depth, not size" in offline["why (computed from the records)"]
    on_gpt2 = next(r for r in report.claims("evidence", records=_size_records("gpt2"), backbone="minilm").rows
                   if r["claim"] == size.text)
    assert on_gpt2["verdict"] == "large higher"
