"""The Frozen Pretrained Transformer: new input layer -> frozen backbone -> new output layer.

    x --(cut into tokens)--> input layer --> backbone (inputs_embeds) --> last k tokens --> output
                             trained         LN + positions trained,      read off          trained
                                             attention + MLP frozen

Which groups train is a ``FreezeSpec`` (``fptlib.freeze``): the paper's default ``fpt`` trains
the input and output layers, the layer norms and the positional embeddings.

The input and output layers may be small MLPs, as the authors' ``in_layer_sizes`` /
``out_layer_sizes`` allowed (hidden widths before / after the backbone; ReLU and dropout between
layers): every layer of such a head belongs to the ``input`` (``output``) group.

``head="flatten"`` is One Fits All's (GPT4TS) classification head instead of reading the last
token(s): GELU on every token's hidden state, all tokens flattened into one vector, LayerNorm, one
linear layer to the classes; it needs a fixed number of tokens (``max_len``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from fptlib.backbones.base import Backbone
from fptlib.freeze import GROUPS, FreezeSpec

# The authors initialise the input layer orthogonally with gain 1.41 (about sqrt 2) and zero bias
# (a nonzero bias on backbones that add no positions: see ``nonzero_bias_``).
INPUT_INIT_GAIN = 1.41
HEADS = ("last", "flatten")    # read the last k tokens (the paper) | GELU, flatten all, LayerNorm, linear (GPT4TS)


def _check_arguments(backbone, output_dim, token_dim, vocab_size, output_tokens, max_len,
                     in_layer_sizes, out_layer_sizes, head) -> None:
    """FPT's arguments, each checked before anything is built; the error names the fix."""
    if not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be an fptlib Backbone (see fptlib.load_backbone), "
                        f"not {type(backbone).__name__}")
    if (token_dim is None) == (vocab_size is None):
        raise ValueError("give exactly one of token_dim (continuous inputs, linear input "
                         "layer) and vocab_size (discrete inputs, embedding table)")
    for label, value in (("output_dim", output_dim), ("output_tokens", output_tokens),
                         ("token_dim", token_dim), ("vocab_size", vocab_size),
                         ("max_len", max_len)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    for label, sizes in (("in_layer_sizes", in_layer_sizes), ("out_layer_sizes", out_layer_sizes)):
        if not all(isinstance(v, int) and v >= 1 for v in sizes):
            raise ValueError(f"{label} must be positive integers (hidden widths), got {sizes!r}")
    if vocab_size is not None and in_layer_sizes:
        raise ValueError("in_layer_sizes needs continuous tokens (token_dim): discrete tokens "
                         "go through an embedding table, as in the authors' code")
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}")
    if head == "flatten" and (max_len is None or output_tokens != 1 or out_layer_sizes):
        raise ValueError("head='flatten' (GPT4TS's) reads every token: it needs max_len (the fixed number "
                         "of tokens), output_tokens=1 and no out_layer_sizes")
    if max_len is not None and output_tokens > max_len:
        raise ValueError(f"output_tokens={output_tokens} cannot exceed the sequence length "
                         f"max_len={max_len}: the output layer reads the last k tokens")


class FrozenPretrainedTransformer(nn.Module):
    """FPT around any ``Backbone``.

    Exactly one of ``token_dim`` (continuous tokens: a linear input layer) and ``vocab_size``
    (discrete tokens: an embedding table) is given. ``output_dim`` logits are produced for each of
    the last ``output_tokens`` tokens. ``max_len`` is the longest sequence the model will see; if
    it exceeds the backbone's learned positional table, ``extend_positions=True`` grows the table
    (otherwise a ValueError names both lengths). ``in_layer_sizes`` / ``out_layer_sizes`` are the
    hidden widths of MLP input / output heads (empty: one linear layer, the paper's default).
    """

    def __init__(self, backbone: Backbone, *, output_dim: int, token_dim: int | None = None,
                 vocab_size: int | None = None, output_tokens: int = 1,
                 freeze: "str | FreezeSpec" = "fpt", dropout: float = 0.1,
                 max_len: int | None = None, extend_positions: bool = False,
                 pad_id: int | None = None, in_layer_sizes: Sequence[int] = (),
                 out_layer_sizes: Sequence[int] = (), head: str = "last") -> None:
        super().__init__()
        in_layer_sizes, out_layer_sizes = tuple(in_layer_sizes), tuple(out_layer_sizes)
        _check_arguments(backbone, output_dim, token_dim, vocab_size, output_tokens, max_len,
                         in_layer_sizes, out_layer_sizes, head)
        self.backbone = backbone
        self.token_dim, self.vocab_size, self.pad_id = token_dim, vocab_size, pad_id
        self.output_tokens, self.output_dim = output_tokens, output_dim
        self.max_len = max_len
        self.in_layer_sizes, self.out_layer_sizes = in_layer_sizes, out_layer_sizes
        self._values_checked = False    # on an accelerator, see _check_values
        hidden = backbone.hidden_size

        if token_dim is not None:
            self.input = mlp((token_dim, *in_layer_sizes, hidden), dropout, gain=INPUT_INIT_GAIN)
            if backbone.zero_embedding_unsafe:   # e.g. LLaMA: a 0 bit would embed to exactly zero
                nonzero_bias_(self.input[-1] if in_layer_sizes else self.input, INPUT_INIT_GAIN)
        else:
            self.input = nn.Embedding(vocab_size, hidden, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.head = head
        if head == "flatten":     # GPT4TS: act -> reshape(B, -1) -> ln_proj -> out_layer
            self.output = nn.Sequential(nn.GELU(), nn.Flatten(1), nn.LayerNorm(max_len * hidden),
                                        nn.Linear(max_len * hidden, output_dim))
        else:
            self.output = mlp((hidden, *out_layer_sizes, output_dim), dropout)

        limit = backbone.max_positions
        if max_len is not None and limit is not None and max_len > limit:
            if not extend_positions:
                raise ValueError(
                    f"sequences of {max_len} tokens exceed {backbone.name}'s learned positional "
                    f"table of {limit} rows; pass extend_positions=True (command line: "
                    f"--extend-positions) to grow the table "
                    f"(new rows start as copies of the pretrained ones and train with them), "
                    f"or use shorter sequences")
            backbone.extend_positions(max_len)

        self.apply_freeze(freeze)

    # ---- construction helpers ----------------------------------------------------------------
    @classmethod
    def for_task(cls, task, backbone: Backbone, freeze="fpt", **kwargs) -> "FrozenPretrainedTransformer":
        """Build the model a task needs (token size or vocabulary, output tokens and size)."""
        return cls(backbone, freeze=freeze, **{**task.model_kwargs(), **kwargs})

    def param_group_map(self) -> dict[str, str]:
        """Every parameter name of the model -> its group (see ``fptlib.freeze``)."""
        groups = {f"backbone.{name}": group
                  for name, group in self.backbone.parameter_groups().items()}
        for name, _ in self.input.named_parameters():
            groups[f"input.{name}"] = "input"
        for name, _ in self.output.named_parameters():
            groups[f"output.{name}"] = "output"
        return groups

    def apply_freeze(self, spec: "str | FreezeSpec") -> None:
        """Set ``requires_grad`` from a freeze spec; the unused token table never trains."""
        self.freeze = FreezeSpec.parse(spec)
        groups = self.param_group_map()
        for name, param in self.named_parameters():
            group = groups[name]
            param.requires_grad_(group != "unused" and self.freeze.trains(group))

    # ---- forward ----------------------------------------------------------------------------
    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Check the input and cut continuous inputs into tokens of ``token_dim``.

        Continuous: float ``[B, N]`` or ``[B, L, M]`` with ``N`` / ``M`` a multiple of token_dim
        becomes ``[B, N/token_dim, token_dim]`` (``[B, L*M/token_dim, token_dim]``).
        Discrete: long ``[B, L]`` token ids, returned as they are.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, not {type(x).__name__}")
        if x.dim() >= 1 and x.shape[0] == 0:
            raise ValueError(f"empty batch: the input has shape {tuple(x.shape)}, with no examples")
        if self.vocab_size is not None:
            if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                raise TypeError(f"this model embeds discrete tokens: give integer token ids of "
                                f"shape [batch, length], not a {x.dtype} tensor")
            if x.dim() != 2:
                raise ValueError(f"token ids must have shape [batch, length]; got {tuple(x.shape)}")
            return x.long()
        if not x.is_floating_point():
            raise TypeError(f"this model has a linear input layer: give a floating-point tensor "
                            f"(e.g. x.float()), not {x.dtype}")
        if x.dim() not in (2, 3):
            raise ValueError(f"continuous input must be [batch, features] or [batch, tokens, "
                             f"features]; got shape {tuple(x.shape)}")
        dtype = next(self.input.parameters()).dtype    # a linear layer or an MLP head
        if x.dtype != dtype:                            # float64 / float16 data: the model's dtype
            x = x.to(dtype)
        last = x.shape[-1]
        if last % self.token_dim:
            raise ValueError(f"the input's last dimension ({last}) is not a multiple of the token "
                             f"size ({self.token_dim}); pad the input or pick a token size that "
                             f"divides {last}")
        return x.reshape(x.shape[0], -1, self.token_dim)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False):
        """Logits ``[B, output_dim]`` (or ``[B, k, output_dim]`` when reading k > 1 tokens).

        With ``output_attentions=True`` returns ``(logits, attentions)``: one ``[B, heads, L, L]``
        tensor per layer. ``attention_mask`` (1 = real token) marks right padding: the output is
        then read from the last *real* token(s) of each sequence.
        """
        tokens = self.tokens(x)
        length = tokens.shape[1]
        limit = self.backbone.max_positions
        if limit is not None and length > limit:
            raise ValueError(f"got {length} tokens but {self.backbone.name}'s positional table has "
                             f"{limit} rows; build the model with max_len={length} and "
                             f"extend_positions=True")
        if self.output_tokens > length:
            raise ValueError(f"the model reads the last {self.output_tokens} tokens but the input "
                             f"has only {length}")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(tokens.shape[:2]):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                             f"[batch, tokens] = {tuple(tokens.shape[:2])}")
        if self.head == "flatten" and length != self.max_len:
            raise ValueError(f"head='flatten' flattens exactly max_len={self.max_len} tokens; got {length} "
                             f"(pad every example to the same number of tokens)")
        self._check_values(tokens, attention_mask)

        embeds = self.dropout(self.input(tokens))
        out = self.backbone(embeds, attention_mask=attention_mask,
                            output_attentions=output_attentions)
        if self.head == "flatten":
            logits = self.output(out.hidden)
            return (logits, out.attentions) if output_attentions else logits
        logits = self.output(self._last_tokens(out.hidden, attention_mask))
        if self.output_tokens == 1:
            logits = logits[:, 0]
        return (logits, out.attentions) if output_attentions else logits

    def forward_with_attentions(self, x, attention_mask=None):
        return self.forward(x, attention_mask=attention_mask, output_attentions=True)

    def _check_values(self, tokens: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Checks that read the inputs' values: token ids inside the vocabulary; a right-padded mask
        (the output is read from the last real tokens) with at least ``output_tokens`` real tokens.

        They cost one host read: always done on the CPU, where it is cheap; on an accelerator only on
        the model's first call (a read per step would make the GPU wait on the host every step);
        skipped under torch.compile, where it would break the graph."""
        if torch.compiler.is_compiling() or (tokens.device.type != "cpu" and self._values_checked):
            return
        stats = []
        if self.vocab_size is not None:
            stats += [tokens.min(), tokens.max()]
        if mask is not None:
            real = mask != 0
            stats += [(real[:, 1:] & ~real[:, :-1]).any().long(), real.long().sum(dim=1).min(),
                      ((mask != 0) & (mask != 1)).any().long()]
        if not stats:
            return
        values = torch.stack(stats).tolist()           # the one host read
        self._values_checked = True
        if self.vocab_size is not None:
            low, high = values[:2]
            values = values[2:]
            if low < 0 or high >= self.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(f"token id {bad} is outside this model's vocabulary of {self.vocab_size} "
                                 f"(ids 0..{self.vocab_size - 1}): build the model with the task's "
                                 f"vocab_size, or check the tokenizer")
        if mask is not None:
            left_padded, shortest, not_binary = values
            if not_binary:
                raise ValueError("attention_mask holds values other than 0 and 1 (e.g. 2, 0.5 or -1): it marks "
                                 "each position real (1) or padding (0); build it as (lengths > position) or "
                                 "a bool tensor")
            if left_padded:
                raise ValueError("attention_mask has a real token (1) after padding (0): the model reads "
                                 "the last real token(s) and assumes right padding; put the padding at "
                                 "the end of each sequence")
            if shortest < self.output_tokens:
                raise ValueError(f"a sequence in the batch has fewer than {self.output_tokens} real tokens")

    def _last_tokens(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        k = self.output_tokens
        if mask is None:
            return hidden[:, -k:]
        lengths = mask.long().sum(dim=1)        # checked in _check_values
        index = lengths[:, None] - k + torch.arange(k, device=hidden.device)
        return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))

    # ---- description ------------------------------------------------------------------------
    def config_dict(self) -> dict:
        """What identifies this configuration (checkpoints from another one are refused)."""
        bb = self.backbone
        return {
            "backbone": bb.name, "family": bb.family, "init": bb.init,
            "hidden_size": bb.hidden_size, "num_layers": bb.num_layers,
            "positions": bb.max_positions,
            "token_dim": self.token_dim, "vocab_size": self.vocab_size,
            "output_tokens": self.output_tokens, "output_dim": self.output_dim,
            "max_len": self.max_len, "dropout": self.dropout.p, "freeze": self.freeze.name,
            "trained_groups": sorted(self.freeze.trained),
            # only when used, so that checkpoints of one-layer heads keep their identity
            **({"in_layer_sizes": list(self.in_layer_sizes)} if self.in_layer_sizes else {}),
            **({"out_layer_sizes": list(self.out_layer_sizes)} if self.out_layer_sizes else {}),
            **({"head": self.head} if self.head != "last" else {}),
        }

    def describe(self, seq_len: int | None = None) -> "Description":
        """Parameter counts per group, trainable or frozen, and the paper's trainable count.

        The paper counts only the positional rows a task uses (``seq_len``, default the model's
        ``max_len``) and of course not the unused token table; ``paper_trainable`` does the same.
        """
        return Description.of(self, seq_len or self.max_len)


@dataclass
class Description:
    backbone: str
    rows: list[tuple[str, int, int]]    # (group, total, trainable)
    trainable: int
    total: int
    paper_trainable: int
    seq_len: int | None
    freeze: str
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, model: FrozenPretrainedTransformer, seq_len: int | None) -> "Description":
        groups = model.param_group_map()
        counts = {g: [0, 0] for g in (*GROUPS, "unused")}
        paper = 0
        for name, param in model.named_parameters():
            group = groups[name]
            counts[group][0] += param.numel()
            if param.requires_grad:
                counts[group][1] += param.numel()
                if (group == "positions" and seq_len is not None and param.dim() == 2
                        and model.backbone.max_positions is not None):   # a table of rows
                    paper += min(seq_len, param.shape[0]) * param.shape[1]
                else:
                    paper += param.numel()
        rows = [(g, total, train) for g, (total, train) in counts.items() if total]
        notes = list(model.backbone.notes)
        for group, sizes in (("input", model.in_layer_sizes), ("output", model.out_layer_sizes)):
            if sizes:
                head = model.input if group == "input" else model.output
                widths = [head[0].in_features] + [m.out_features for m in head
                                                   if isinstance(m, nn.Linear)]
                notes.append(f"the {group} group is an MLP head {' -> '.join(map(str, widths))} "
                             f"({len(widths) - 1} linear layers, ReLU and dropout between)")
        if model.head == "flatten":
            notes.append(f"the output group is GPT4TS's head: GELU, {model.max_len} tokens x "
                         f"{model.backbone.hidden_size} flattened, LayerNorm, linear to {model.output_dim}")
        if model.token_dim is not None and model.backbone.zero_embedding_unsafe:
            notes.append(f"the input layer's bias starts as a random vector of length {INPUT_INIT_GAIN} "
                         f"(the authors': zero), so a zero input token is not embedded as exactly zero: "
                         f"this backbone adds no positions, and RMSNorm's gradient at zero overflows "
                         f"with depth (model.nonzero_bias_)")
        if not counts["positions"][0] and model.freeze.trains("positions"):
            notes.append("the 'positions' group is empty for this backbone: training it "
                         "changes nothing")
        if counts["unused"][0]:
            notes.append(f"'unused' is {model.backbone.unused_what}: inputs go through "
                         f"inputs_embeds, so it is never used nor trained")
        return cls(
            backbone=model.backbone.describe_source(), rows=rows,
            trainable=sum(r[2] for r in rows), total=sum(r[1] for r in rows),
            paper_trainable=paper, seq_len=seq_len, freeze=model.freeze.name, notes=notes)

    def to_dict(self) -> dict:
        return {
            "backbone": self.backbone, "freeze": self.freeze, "seq_len": self.seq_len,
            "groups": {g: {"total": t, "trainable": tr, "frozen": t - tr} for g, t, tr in self.rows},
            "trainable": self.trainable, "total": self.total,
            "paper_trainable": self.paper_trainable,
            "paper_trainable_fraction": self.paper_trainable / self.total if self.total else math.nan,
            "notes": self.notes,
        }

    def __str__(self) -> str:
        lines = [f"{self.backbone}; freeze preset '{self.freeze}'",
                 f"{'group':<12} {'total':>13} {'trainable':>13} {'frozen':>13}"]
        for group, total, train in self.rows:
            lines.append(f"{group:<12} {total:>13,} {train:>13,} {total - train:>13,}")
        lines.append(f"{'all':<12} {self.total:>13,} {self.trainable:>13,} "
                     f"{self.total - self.trainable:>13,}")
        used = f"{self.seq_len} positional rows used" if self.seq_len else "all positional rows"
        lines.append(f"trainable as the paper counts it ({used}): {self.paper_trainable:,} "
                     f"= {100 * self.paper_trainable / self.total:.3f}% of all parameters")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    __repr__ = __str__


def mlp(widths: Sequence[int], dropout: float, gain: float | None = None) -> nn.Module:
    """Linear layers from ``widths[0]`` through ``widths[-1]``, ReLU and dropout between them.

    One linear layer (two widths) is returned bare, so the paper's heads keep their parameter
    names. With ``gain`` every weight is orthogonal with that gain and every bias zero (the
    authors' input layers); otherwise PyTorch's default initialisation (their output layers).
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        linear = nn.Linear(a, b)
        if gain is not None:
            nn.init.orthogonal_(linear.weight, gain=gain)
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(widths) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def nonzero_bias_(linear: nn.Linear, norm: float) -> None:
    """Set ``linear``'s bias to a random vector of length ``norm``, orthogonal to its weight's
    columns where the width allows.

    With the authors' zero bias an all-zero input token (a 0 bit, a black patch) embeds to exactly
    zero. GPT-2 and BERT add a positional embedding, so no token reaches the body as zero; a LLaMA
    body adds nothing, and with causal attention a leading zero token stays zero in every layer,
    where RMSNorm's gradient is 1/sqrt(eps): SmolLM2's 30 layers overflow it to NaN at the first
    step. With this bias a zero input embeds to a vector as long as a unit input's, in a direction
    of its own.
    """
    with torch.no_grad():
        weight = linear.weight                               # [out, in]
        bias = torch.randn(weight.shape[0], dtype=weight.dtype, device=weight.device)
        if weight.shape[1] < weight.shape[0]:
            basis, _ = torch.linalg.qr(weight)               # orthonormal basis of the columns
            bias -= basis @ (basis.T @ bias)
        linear.bias.copy_(bias * (norm / bias.norm()))


FPT = FrozenPretrainedTransformer
