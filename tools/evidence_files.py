"""The files of the committed evidence, for ``git add``: every record with its manifest entry, and the
manifest, under results/evidence/, and the trained parameters of the models notebook 12 loads
(``experiments.catalogue.shipped_weights``: every seed of ``reproduce attention --profile evidence`` and the
Bit XOR runs of ``second_backbone``). Other runs' weights stay ignored (the whole folder must stay under
~30 MB; tests/test_experiments_tables.py checks it).

    git add -f $(.venv/bin/python tools/evidence_files.py)
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fptlib import experiments, files  # noqa: E402


def evidence_files(root: Path = ROOT) -> list[Path]:
    """Only records that have their manifest entry (``reproduce`` writes a group's entries when the
    group ends): a commit taken while runs go on never holds a record without its entry."""
    folder = files.evidence_dir(root / "results")
    entered = set(files.read_manifest(folder))
    out = [p for p in sorted(folder.glob("*.json")) if p.stem in entered]
    out += [p for p in (folder / files.MANIFEST, folder / "README.md") if p.is_file()]
    for cfg in experiments.catalogue.shipped_weights(files.EVIDENCE, experiments.EVIDENCE_BACKBONE):
        weights = experiments.weights_path(cfg.key, folder)
        if weights.is_file() and cfg.key in entered:
            out.append(weights)
    return out


if __name__ == "__main__":
    print("\n".join(str(p.relative_to(ROOT)) for p in evidence_files()))
