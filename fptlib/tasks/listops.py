"""ListOps (Long Range Arena): nested list operations over digits, 10 classes.

An expression such as ``[MAX 2 9 [MIN 4 7 ] 0 ]`` has operators MIN, MAX, MED (median, rounded
down) and SM (sum modulo 10) over digits 0-9 and nested sub-expressions; the label is its value.

The generator reimplements LRA's (``lra_benchmarks/data/listops.py``): a node is an operator with
probability 0.25 (never at ``max_depth``) and a digit otherwise; an operator takes
``randint(2, max_args)`` arguments, each a subtree. An expression is kept when its token count
(operators, digits and closing brackets) is strictly inside the length window, 500 to 2000 for
LRA's ``listops-1000``. Expressions are unique across all splits. LRA writes them as TSV
(header ``Source\\tTarget``) with the parentheses of its tuple encoding as separate tokens, e.g.
``( ( ( [MAX 2 ) 9 ) ] )``; this module writes and reads that layout.

Two tokenizations, always named:

* ``"paper"``: the tokenizer of the early-2021 LRA pipeline that FPT used splits on punctuation,
  so ``[MIN`` becomes ``MIN`` and the closing ``]`` and the parentheses vanish: vocabulary 15
  (padding + 4 operators + 10 digits), sequences cut to 512 tokens. Without ``]`` the nesting is
  lost, so the label is not always recoverable from the tokens.
* ``"corrected"``: keeps ``]`` (vocabulary 16), as later LRA code does; the expression can be
  evaluated from its tokens. Default length limit 2000 (LRA's), longer than GPT-2's 1024
  positions: pass ``max_len`` or let the model extend its positions.
"""
from __future__ import annotations

import csv
import io
import os
import random
from pathlib import Path


from fptlib.files import atomic_write_text
from fptlib.tasks.base import paper_hparams, positive
from fptlib.tasks.dataset import DatasetTask, Split
from fptlib.tasks.download import data_dir as resolve_data_dir
from fptlib.tasks.download import data_dir_explained, data_dir_tag

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
OPERATOR_NAMES = tuple(op.lstrip("[") for op in OPERATORS)  # as tokens: MIN, MAX, MED, SM
END = "]"
VALUE_P = 0.25  # LRA's name: a node is an *operator* when random() <= VALUE_P
TOKENIZATIONS = {
    # id 0 is padding; the paper's stream drops "[" from operators and drops "]" entirely
    "paper": ("<pad>", *OPERATOR_NAMES, *map(str, range(10))),
    "corrected": ("<pad>", *OPERATOR_NAMES, *map(str, range(10)), "]"),
}
DEFAULT_MAX_LEN = {"paper": 512, "corrected": 2000}
LRA_FILES = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}
LRA_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"


# ---- expressions ------------------------------------------------------------------------
def generate_tree(rng: random.Random, max_depth: int = 10, max_args: int = 10,
                  limit: int | None = None):
    """A random expression tree: an int (digit) or ``(operator, [children])``.

    With ``limit``, growth stops as soon as the tree has ``limit`` tokens and None is returned:
    such a tree would be rejected anyway, and huge rejected trees are most of the generator's
    time for small length windows. Accepted trees are distributed exactly as without a limit.
    """
    budget = [limit if limit is not None else float("inf")]

    def grow(depth):
        if budget[0] <= 0:
            return None
        if depth < max_depth and rng.random() <= VALUE_P:
            budget[0] -= 2
            n_args = rng.randint(2, max_args)
            children = []
            for _ in range(n_args):
                child = grow(depth + 1)
                if child is None:
                    return None
                children.append(child)
            return (rng.choice(OPERATORS), children)
        budget[0] -= 1
        return rng.choice(range(10))

    tree = grow(1)
    return None if budget[0] < 0 else tree


def tree_length(tree) -> int:
    """Tokens of the expression: operators, digits and closing brackets."""
    if isinstance(tree, int):
        return 1
    return 2 + sum(tree_length(child) for child in tree[1])


def to_lra_string(tree) -> str:
    """LRA's TSV source string: the parentheses of its nested-pair encoding included."""
    if isinstance(tree, int):
        return str(tree)
    op, children = tree
    text = f"( {op} {to_lra_string(children[0])} )"
    for child in children[1:]:
        text = f"( {text} {to_lra_string(child)} )"
    return f"( {text} ] )"


def apply(op: str, args: list[int]) -> int:
    """The value of one operator on its (evaluated) arguments."""
    op = op.lstrip("[")
    if op == "MIN":
        return min(args)
    if op == "MAX":
        return max(args)
    if op == "SM":
        return sum(args) % 10
    if op == "MED":  # LRA: int(np.median(args)); for an even count the mean of the middle two
        s, m = sorted(args), len(args) // 2
        return s[m] if len(args) % 2 else (s[m - 1] + s[m]) // 2
    raise ValueError(f"unknown ListOps operator {op!r}; known: {', '.join(OPERATORS)}")


def evaluate(tokens: list[str] | str) -> int:
    """Value of an expression given as tokens (LRA string or list), with a stack.

    Parentheses are ignored; ``]`` closes the innermost open operator.
    """
    if isinstance(tokens, str):
        tokens = tokens.split()
    stack: list[tuple[str, list[int]]] = []
    result = None
    for tok in tokens:
        if tok in ("(", ")"):
            continue
        if result is not None and not stack:
            raise ValueError(f"unbalanced ListOps expression: {tok!r} after the expression ended")
        if tok.lstrip("[") in OPERATOR_NAMES:
            stack.append((tok, []))
        elif tok == END:
            if not stack:
                raise ValueError("unbalanced ListOps expression: ']' without an operator")
            op, args = stack.pop()
            value = apply(op, args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        elif tok.isdigit() and len(tok) == 1:
            if stack:
                stack[-1][1].append(int(tok))
            else:
                result = int(tok)
        else:
            raise ValueError(f"unknown ListOps token {tok!r}")
    if stack or result is None:
        raise ValueError("incomplete ListOps expression: an operator is never closed")
    return result


def generate_examples(n: int, seed: int, min_length: int = 500, max_length: int = 2000,
                      max_depth: int = 10, max_args: int = 10, seen: set | None = None):
    """``n`` unique (LRA source string, label) pairs with token count in (min_length, max_length)."""
    if not 0 <= min_length < max_length - 1:
        raise ValueError(f"the length window ({min_length}, {max_length}) is empty; lengths are "
                         f"kept when strictly between the two, e.g. min_length=20, max_length=100")
    rng = random.Random(seed)
    seen = set() if seen is None else seen
    out = []
    while len(out) < n:
        tree = generate_tree(rng, max_depth, max_args, limit=max_length)
        if tree is None or not min_length < tree_length(tree) < max_length:
            continue
        text = to_lra_string(tree)
        if text not in seen:
            seen.add(text)
            out.append((text, evaluate(text)))
    return out


# ---- tokens -----------------------------------------------------------------------------
def vocabulary(tokenization: str) -> tuple[str, ...]:
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"unknown ListOps tokenization {tokenization!r}; known: "
                         f"{', '.join(TOKENIZATIONS)} ('paper' drops the brackets as FPT's "
                         f"pipeline did, 'corrected' keeps ']')")
    return TOKENIZATIONS[tokenization]


def tokenize(source: str, tokenization: str = "paper") -> list[int]:
    """Token ids of an LRA source string (parentheses dropped; ``]`` kept only if corrected)."""
    vocab = vocabulary(tokenization)
    index = {tok: i for i, tok in enumerate(vocab)}
    ids = []
    for tok in source.split():
        if tok in ("(", ")") or (tok == END and tokenization == "paper"):
            continue
        key = tok.lstrip("[") if tok != END else tok
        if key not in index or key == "<pad>":
            raise ValueError(f"unknown ListOps token {tok!r}")
        ids.append(index[key])
    return ids


def decode(ids, tokenization: str = "paper") -> str:
    """Readable text of token ids (padding skipped); operators get their ``[`` back."""
    vocab = vocabulary(tokenization)
    words = [vocab[i] for i in (int(i) for i in ids) if i != 0]
    return " ".join("[" + w if w in OPERATOR_NAMES else w for w in words)


# ---- files ------------------------------------------------------------------------------
SOURCE_TOKENS = frozenset({"(", ")", END, *OPERATORS, *map(str, range(10))})


DIGITS = tuple("0123456789")


def bad_file_fix() -> str:
    return (f"the file is not one of LRA's ListOps TSV files or is damaged: unpack listops-1000 "
            f"again from {LRA_URL}, or use source='generated' (works offline)")


def read_tsv(path: str | os.PathLike) -> list[tuple[str, int]]:
    """(source, label) pairs of an LRA ListOps TSV file; a bad line names file, line and fix.

    Read line by line rather than with ``csv`` (whose fields stop at 131,072 characters): LRA's
    files hold no quoted fields. Refused, each naming the line: NUL bytes, text that is not
    UTF-8, a wrong header, a line without exactly two tab-separated fields, a token outside
    ListOps' alphabet, a target that is not a digit, an expression that does not evaluate (empty,
    unbalanced) or evaluates to another value than its target; and a file with no example at all.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is not a file (a folder, FIFO or device); {bad_file_fix()}")
    lines = path.read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        where = f"{path}, line {number}"
        if b"\x00" in raw:
            raise ValueError(f"{where}: NUL byte at column {raw.index(0) + 1}; {bad_file_fix()}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{where}: not UTF-8 text (byte {raw[err.start]:#04x} at column "
                             f"{err.start + 1}); {bad_file_fix()}") from None
        row = text.split("\t")
        if number == 1:
            if row != ["Source", "Target"] and row != ["\ufeffSource", "Target"]:
                raise ValueError(f"{where}: expected the header 'Source<TAB>Target' of LRA's "
                                 f"ListOps files, found {text[:80]!r}; {bad_file_fix()}")
            continue
        if len(row) != 2:
            raise ValueError(f"{where}: expected 2 tab-separated fields, got {len(row)}; "
                             f"{bad_file_fix()}")
        source, target = row
        unknown = set(source.split()).difference(SOURCE_TOKENS)
        if unknown:
            raise ValueError(f"{where}: unknown ListOps token {sorted(unknown)[0]!r}; known tokens: "
                             f"{' '.join(sorted(SOURCE_TOKENS))}; {bad_file_fix()}")
        if target.strip() not in DIGITS:        # str.isdigit() also takes "²", which int() refuses
            raise ValueError(f"{where}: target {target!r} is not a digit 0-9; {bad_file_fix()}")
        out.append((source, int(target)))
    if not lines:
        raise ValueError(f"{path}, line 1: expected the header 'Source<TAB>Target' of LRA's "
                         f"ListOps files, found an empty file; {bad_file_fix()}")
    if not out:
        raise ValueError(f"{path}: only the header, no examples; {bad_file_fix()}")
    for number, (source, target) in enumerate(out, start=2):     # then what each line means
        try:
            value = evaluate(source)
        except ValueError as err:               # unbalanced brackets, an empty expression
            raise ValueError(f"{path}, line {number}: {err}; {bad_file_fix()}") from None
        if value != target:
            raise ValueError(f"{path}, line {number}: the expression evaluates to {value}, the target "
                             f"says {target}; {bad_file_fix()}")
    return out


def write_tsv(path: str | os.PathLike, rows) -> None:
    """Write (source, label) rows in LRA's layout, atomically."""
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(["Source", "Target"])
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def lra_folder(root: Path) -> Path | None:
    """The folder holding LRA's released ListOps files, if a user has put them under ``root``.

    A folder with some of the three files but not all is an error naming the missing ones (not
    a silent fall-back to generated data).
    """
    for folder in (root / "lra_release" / "listops-1000", root / "listops-1000"):
        present = [f for f in LRA_FILES.values() if (folder / f).exists()]
        if len(present) == len(LRA_FILES):
            return folder
        if present:
            missing = [f for f in LRA_FILES.values() if f not in present]
            raise FileNotFoundError(
                f"ListOps: {folder} holds {', '.join(present)} but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing; LRA's listops-1000 has all "
                f"three. Unpack the missing file(s) from {LRA_URL}, or use source='generated' "
                f"(works offline).")
    return None


# ---- the task ---------------------------------------------------------------------------
class ListOps(DatasetTask):
    """ListOps as a discrete-token task: ids [B, L] right-padded with 0, mask [B, L], 10 classes.

    ``source``: "lra" reads LRA's released files from ``<data>/lra_release/listops-1000/``;
    "generated" uses this module's generator (cached as TSV under ``<data>/listops/``); "auto"
    prefers the released files when present.
    """

    name = "listops"
    input_kind = "discrete"
    pad_id = 0
    output_dim = 10

    def __init__(self, tokenization: str = "paper", source: str = "auto", n_train: int = 96_000,
                 n_val: int = 2_000, n_test: int = 2_000, min_length: int = 500,
                 max_length: int = 2000, max_depth: int = 10, max_args: int = 10,
                 max_len: int | None = None, seed: int = 0, data_dir: str | None = None,
                 cache: bool = True):
        super().__init__()
        self.vocab = vocabulary(tokenization)
        if source not in ("auto", "lra", "generated"):
            raise ValueError(f"unknown ListOps source {source!r}; known: auto, lra, generated")
        for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            positive(key, value)
        if max_depth < 2 or max_args < 2:
            raise ValueError(f"max_depth and max_args must be at least 2, got {max_depth}, {max_args}")
        self.tokenization, self.seed, self.cache = tokenization, seed, cache
        self.window, self.max_depth, self.max_args = (min_length, max_length), max_depth, max_args
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.root = resolve_data_dir(data_dir)
        self.vocab_size = len(self.vocab)
        self.max_len = max_len or DEFAULT_MAX_LEN[tokenization]
        self.options = {"tokenization": tokenization, "source": source, "n_train": n_train,
                        "n_val": n_val, "n_test": n_test, "min_length": min_length,
                        "max_length": max_length, "max_depth": max_depth, "max_args": max_args,
                        "max_len": self.max_len, "seed": seed}
        found = lra_folder(self.root) if source != "generated" else None
        if source == "lra" and found is None:
            raise FileNotFoundError(self.missing_lra_message())
        self.source = "lra" if (source == "lra" or (source == "auto" and found)) else "generated"
        self.lra_dir = found
        self.hparams = paper_hparams(batch_size=4)
        tok_text = ("the paper's tokenization: brackets dropped, vocabulary 15"
                    if tokenization == "paper" else
                    "corrected tokenization: closing ']' kept, vocabulary 16")
        self.description = (f"ListOps: evaluate a nested MIN/MAX/MED/SM expression over digits "
                            f"(10 classes); {tok_text}; up to {self.max_len} tokens, padded per "
                            f"batch.")
        if self.source == "lra":
            origin = f"Long Range Arena's released listops-1000 files ({found})"
        else:
            origin = (f"generated here by a reimplementation of LRA's generator (seed {seed}, "
                      f"{n_train}/{n_val}/{n_test} expressions, token count strictly between "
                      f"{min_length} and {max_length}, depth <= {max_depth}, <= {max_args} "
                      f"arguments; LRA's: 96000/2000/2000, 500-2000, 10, 10)")
        self.data_source = (f"ListOps, {origin}; {tok_text}; longer sequences cut to their "
                            f"first {self.max_len} tokens")

    def missing_lra_message(self) -> str:
        return (f"ListOps: LRA's released files {', '.join(LRA_FILES.values())} were not found "
                f"in {self.root / 'lra_release' / 'listops-1000'} (data folder "
                f"{data_dir_explained(self.root)}). Get them from {LRA_URL} (folder "
                f"listops-1000) and unpack them there, or use source='generated' (works offline).")

    def generated_folder(self) -> Path:
        lo, hi = self.window
        n = self.sizes
        key = (f"seed{self.seed}-len{lo}-{hi}-depth{self.max_depth}-args{self.max_args}-"
               f"n{n['train']}-{n['val']}-{n['test']}")
        return self.root / "listops" / "generated" / key

    def examples(self) -> dict[str, list[tuple[str, int]]]:
        """(source, label) pairs per split, from LRA's files or the (cached) generator."""
        if self.source == "lra":
            return {s: read_tsv(self.lra_dir / f)[: self.sizes[s]] for s, f in LRA_FILES.items()}
        folder = self.generated_folder()
        if all((folder / f).exists() for f in LRA_FILES.values()):
            return {s: read_tsv(folder / f) for s, f in LRA_FILES.items()}
        seen: set = set()
        lo, hi = self.window
        out = {}
        for i, split in enumerate(LRA_FILES):  # one seed per split; uniqueness across splits
            out[split] = generate_examples(self.sizes[split], self.seed * 3 + i, lo, hi,
                                           self.max_depth, self.max_args, seen)
        if self.cache:
            for split, f in LRA_FILES.items():
                write_tsv(folder / f, out[split])
        return out

    def load_splits(self) -> dict[str, Split]:
        splits = {}
        self.truncated = {}
        for split, rows in self.examples().items():
            ids = [tokenize(src, self.tokenization) for src, _ in rows]
            self.truncated[split] = sum(len(t) > self.max_len for t in ids)
            splits[split] = Split.from_sequences([t[: self.max_len] for t in ids],
                                                 [label for _, label in rows])
        return splits

    def model_kwargs(self) -> dict:
        """The model is sized by the longest sequence of the data (e.g. under 60 tokens for short
        generated expressions), not by the ``max_len`` cap that only cuts longer ones."""
        longest = max(int(split.lengths.max()) for split in self.splits().values())
        return {**super().model_kwargs(), "max_len": longest}

    @classmethod
    def data_key(cls, source: str = "auto", data_dir=None, **_) -> str:
        """"lra" or "generated" when ``source="auto"`` leaves it to the files present (see registry.data_key)."""
        if source == "generated":
            return ""
        try:
            found = lra_folder(resolve_data_dir(data_dir))
        except FileNotFoundError:       # incomplete files: said when the task loads
            if source == "auto":
                raise
            return ""
        tag = data_dir_tag(data_dir) if found else ""     # LRA's files from the folder $FPT_DATA_DIR names
        if source != "auto":
            return tag
        return ("lra" + tag) if found else "generated"

    @classmethod
    def availability(cls, data_dir=None, **_) -> tuple[bool, str, str]:
        try:
            found = lra_folder(resolve_data_dir(data_dir))
        except FileNotFoundError as err:
            return False, "LRA's listops-1000 files, incomplete", str(err)
        if found:
            return True, f"LRA's released listops-1000 files in {found}", ""
        return True, "generated here (reimplemented LRA generator)", (
            f"LRA's released files: download {LRA_URL}, unpack listops-1000 into "
            f"<data>/lra_release/")
