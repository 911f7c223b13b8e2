"""Which parameters train: groups, a freeze specification, and the paper's presets.

Every parameter of an FPT model belongs to exactly one group:

- ``input``       the new input layer (linear or embedding table)
- ``output``      the new output layer
- ``layernorm``   affine scale and bias of every layer norm in the backbone
- ``positions``   the backbone's learned positional embeddings
- ``attention``   self-attention weights of every block (q, k, v, output projection)
- ``feedforward`` the MLP weights of every block
- ``other``       anything else the backbone carries that the method does not train
                  (e.g. BERT's token-type embedding); trained only by ``full``

The backbones map their parameter names to these groups explicitly (see ``fptlib/backbones``),
so a preset means the same thing on GPT-2, BERT, LLaMA and the LSTM.

Presets follow the paper's ablation ladder (section 3.8 and its tables): each rung adds a group
to the one before: ``output_only`` -> ``+layernorm`` -> ``+input`` -> ``+positions`` (= ``fpt``,
the paper's default), and beyond FPT ``+feedforward``, ``+attention``, ``full``.
Any other combination is written as group names joined by ``+``, e.g. ``"input+output+positions"``
(the paper's "layer norm frozen" row).
"""
from __future__ import annotations

from dataclasses import dataclass

GROUPS = ("input", "output", "layernorm", "positions", "attention", "feedforward", "other")

_FPT = frozenset({"output", "layernorm", "input", "positions"})
PRESETS: dict[str, frozenset[str]] = {
    "output_only": frozenset({"output"}),
    "+layernorm": frozenset({"output", "layernorm"}),
    "+input": frozenset({"output", "layernorm", "input"}),
    "+positions": _FPT,
    "fpt": _FPT,
    "+feedforward": _FPT | {"feedforward"},
    "+attention": _FPT | {"attention"},
    "+both": _FPT | {"feedforward", "attention"},
    "full": frozenset(GROUPS),
}


@dataclass(frozen=True)
class FreezeSpec:
    """The set of trained groups; everything else is frozen."""

    trained: frozenset[str]
    name: str

    @classmethod
    def parse(cls, spec: "str | FreezeSpec | set[str] | frozenset[str]") -> "FreezeSpec":
        if isinstance(spec, FreezeSpec):
            return spec
        if isinstance(spec, (set, frozenset, list, tuple)):
            groups = frozenset(spec)
            _check_groups(groups, repr(spec))
            return cls(groups, _name_for(groups))
        if not isinstance(spec, str):
            raise TypeError(f"freeze must be a preset name, a '+'-joined group list or a set of "
                            f"groups, not {type(spec).__name__}")
        key = spec.strip()
        if key in PRESETS:
            return cls(PRESETS[key], key)
        parts = [p.strip() for p in key.split("+") if p.strip()]
        if not parts or not set(parts) <= set(GROUPS):
            raise ValueError(
                f"unknown freeze preset {spec!r}. Known presets: {', '.join(PRESETS)}; or join "
                f"groups with '+' from: {', '.join(GROUPS)} (e.g. 'input+output+positions')")
        groups = frozenset(parts)
        return cls(groups, _name_for(groups))

    def trains(self, group: str) -> bool:
        return group in self.trained

    def __str__(self) -> str:
        return self.name


def _check_groups(groups: frozenset[str], shown: str) -> None:
    unknown = groups - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter group(s) {sorted(unknown)} in {shown}; "
                         f"known groups: {', '.join(GROUPS)}")


def _name_for(groups: frozenset[str]) -> str:
    """The preset name when the set matches one (``fpt`` preferred), else the joined groups."""
    if groups == _FPT:
        return "fpt"
    for name, preset in PRESETS.items():
        if preset == groups:
            return name
    return "+".join(g for g in GROUPS if g in groups)
