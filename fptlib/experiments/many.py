"""Many runs: trained together where they can (packs over one shared frozen backbone), each once
across processes (a lock per run key), and whole tables reproduced group by group with the
evidence manifest written as each run lands (:func:`run_many`, :func:`reproduce`)."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Mapping

from fptlib import env, files, results, tasks
from fptlib.backbones import BackboneUnavailable
from fptlib.experiments import catalogue, models, single
from fptlib.experiments.cost import run_seconds
from fptlib.experiments.settings import GROUP_VARIES, RunConfig, check_outputs, same_run, store_dir
from fptlib.experiments.single import OUTPUT_ONLY, checkpoint_folder, store_record, train_config
from fptlib.train import distributed
from fptlib.train.distributed import context
from fptlib.train.packed import PackedTrainer, PackError, auto_pack_size, measure_run_bytes, share_frozen
from fptlib.train.trainer import NonFiniteLossError


def pack_group(config: RunConfig) -> str:
    """Runs with the same group can be trained as one pack (``same_run(config, "pack")``): they
    differ at most in learning rate, steps and target, and in seed where the seed changes no frozen
    weight (a pretrained backbone whose preset trains the input layer)."""
    return same_run(config, "pack")


def compatible_groups(configs) -> list[list[RunConfig]]:
    """``configs`` grouped for training together: the same run (backbone, task and data, freeze,
    budget, ...) except for ``GROUP_VARIES`` (seeds, learning rates: ``same_run(c, "setting")``).
    Groups keep the order in which their first config appears, configs their order within the
    group; a key listed twice is kept once."""
    groups: dict[str, list[RunConfig]] = {}
    seen = set()
    for cfg in configs:
        if cfg.key in seen:
            continue
        seen.add(cfg.key)
        groups.setdefault(same_run(cfg, "setting"), []).append(cfg)
    return list(groups.values())


def train_pack(configs, *, directory=None, progress: bool = True, device: str = "auto",
               checkpoint: bool | str | None = None, save_weights: bool | None = None,
               compile: bool | str = "auto", announce: Callable[[], object] | None = None,
               stored: Mapping[str, dict] | None = None) -> list:
    """Always train ``configs`` as one pack; per run its stored record, or its NonFiniteLossError.
    The pack's checkpoint is ``results.pack_checkpoint_dir``, which names its runs: kept at every
    profile (``checkpoint=None``; False: none, or a folder), so that a pack stopped at any point, even
    between its record writes, resumes as the same pack. ``stored``: records of its runs already
    written (a pack resumed after such a stop), returned as they are instead of written again.
    ``announce()`` is called once the pack is built (a PackError comes before it)."""
    stored = stored or {}
    for c in configs:
        single.ensure_pretraining(c, directory=directory, progress=progress, device=device, compile=compile)
    built, task = [], None
    for c in configs:                       # one copy of the frozen backbone for the pack, not K
        model, task = models.build(c, "cpu", directory)
        if built:
            share_frozen(built[0], model)
        built.append(model)
    keys = [c.key for c in configs]
    ckpt_dir = checkpoint_folder(True if checkpoint is None else checkpoint, configs[0], results.pack_name(keys),
                                 directory)
    if ckpt_dir is not None and context().is_main:
        results.note_pack(ckpt_dir, keys)
    tcs = [train_config(c, device=str(env.pick_device(device)), progress=progress, compile=compile) for c in configs]
    trainer = PackedTrainer(built, task, tcs, checkpoint_dir=str(ckpt_dir) if ckpt_dir else None)
    if announce is not None:
        announce()
    outcomes = trainer.fit()
    return [o if isinstance(o, Exception) else stored[c.key] if c.key in stored else
            store_record(c, o, m, task, directory=directory, save_weights=save_weights)
            for c, m, o in zip(configs, built, outcomes)]


class _Runs:
    """The state of one :func:`run_many` call: the records so far, the runs held by other
    processes, the errors; each step of the call is a method."""

    def __init__(self, configs, *, pack, directory, force, log, on_record, on_diverged, **train_kw):
        self.pack, self.directory, self.force, self.log = pack, directory, force, log
        self.on_record, self.on_diverged = on_record, on_diverged
        self.kw = dict(directory=directory, **train_kw)
        self.ctx = context()
        self.records: dict[str, dict] = {}
        self.errors: list[Exception] = []
        self.deferred: list[RunConfig] = []
        self.claims = results.results_dir(store_dir(configs[0].profile, directory)) if configs else None
        self.by_key = {c.key: c for c in configs}

    def got(self, c: RunConfig, record: dict) -> None:
        self.records[c.key] = record
        if self.on_record is not None:
            self.on_record(c, record)

    def stored(self, c: RunConfig) -> dict | None:
        """The run's stored record, unless ``force`` (True: always train; "weightless": train when
        the record's trained weights are not here, checked again as each run is claimed)."""
        if self.force is True:
            return None
        record = _stored(c, self.directory, self.ctx)
        if self.force == WEIGHTLESS and weightless(record, store_dir(c.profile, self.directory)):
            return None
        return record

    def claim(self, key: str, wait: bool = False):
        """files.claim_run; under DDP (torchrun) rank 0 claims for all its processes, which train
        together: the others get an empty context when rank 0 got the lock, None when not."""
        lock = files.claim_run(self.claims, key, wait=wait) if self.ctx.is_main else None
        got = distributed.from_main(lock is not None, self.ctx)
        return lock if self.ctx.is_main else (contextlib.nullcontext() if got else None)

    def failed(self, c: RunConfig, err: Exception) -> None:
        if self.on_diverged is not None and isinstance(err, NonFiniteLossError):
            self.on_diverged(c, err)
        else:
            self.errors.append(err)

    def train_one(self, c: RunConfig) -> None:
        try:
            self.got(c, single.train(c, **self.kw)[0])
        except NonFiniteLossError as err:
            if self.on_diverged is None:
                raise
            self.on_diverged(c, err)

    def train_chunk(self, chunk: list[RunConfig]) -> None:
        if len(chunk) > 1:
            announced = []          # said once the pack is built: "auto" says nothing of groups it cannot pack

            def announce():
                self.log(f"packing {len(chunk)} runs: {', '.join(c.key for c in chunk)}")
                announced.append(True)

            try:
                outcomes = train_pack(chunk, **self.kw, announce=announce)
            except PackError as err:
                if self.pack != "auto" or announced:     # the user asked for packing, or was told it packs
                    self.log(f"cannot pack them ({err}); training them one at a time")
                outcomes = None
            if outcomes is not None:
                for c, outcome in zip(chunk, outcomes):
                    (self.failed if isinstance(outcome, Exception) else self.got)(c, outcome)
                return
        for c in chunk:
            self.train_one(c)

    def pack_size(self, group: list[RunConfig]) -> int:
        pack = self.pack
        if pack is False or pack is None or group[0].freeze == OUTPUT_ONLY:
            return 1        # output-only runs: the feature cache (or one run's Trainer) is the fast path
        if pack != "auto":
            return int(pack)
        dev = distributed.device_for(self.ctx, self.kw["device"])
        per_run = tokens = None
        if dev.type == "cuda":
            model, task = models.build(group[0], "cpu", self.directory)
            per_run = measure_run_bytes(model.to(dev), task, train_config(group[0], device=str(dev)))
        else:                   # a CPU packs only where that was measured faster: short sequences
            tokens = tasks.get(group[0].task, **dict(group[0].task_options)).max_len
        return distributed.from_main(auto_pack_size(len(group), dev, per_run_bytes=per_run, tokens=tokens),
                                     self.ctx)  # agreed

    def run_group(self, group: list[RunConfig]) -> None:
        """Train a pack group's runs in chunks of the pack size; runs another process is training
        are deferred (taken up last)."""
        kw = {k: self.kw[k] for k in ("directory", "progress", "device", "compile")}
        for c in group:                  # the explicit prerequisite, before anything is built
            single.ensure_pretraining(c, **kw)
        self.resume_packs(group)
        group = [c for c in group if c.key not in self.records]
        size = self.pack_size(group) if group else 1
        for start in range(0, len(group), size):
            with contextlib.ExitStack() as locks:
                mine = []
                for c in group[start:start + size]:
                    lock = self.claim(c.key)
                    if lock is None:
                        self.log(f"another process is training {c.key}: its record is read when it finishes")
                        self.deferred.append(c)
                        continue
                    locks.enter_context(lock)
                    done = self.stored(c)
                    if done is not None:        # finished by another process meanwhile
                        self.got(c, done)
                    else:
                        mine.append(c)
                if mine:
                    self.train_chunk(mine)

    def resume_packs(self, group: list[RunConfig]) -> None:
        """A pack stopped after some of its records were written resumes as the same pack (its runs,
        in its order, from its checkpoint), not as a new pack of the runs left; the records written
        before the stop are kept as they are."""
        if self.force or self.claims is None or self.pack in (False, None, 1):
            return
        for keys in results.interrupted_packs({c.key for c in group}, self.claims):
            if not set(keys) <= set(self.by_key):
                continue        # a pack of runs this call was not asked for: left to the call that was
            with contextlib.ExitStack() as locks:
                held = [self.claim(k) for k in keys]
                for lock in held:
                    if lock is not None:
                        locks.enter_context(lock)
                if any(lock is None for lock in held):
                    continue    # another process holds one of its runs
                configs = [self.by_key[k] for k in keys]
                done = {k: r for k in keys if (r := self.stored(self.by_key[k])) is not None}
                self.log(f"resuming the pack of {len(keys)} runs {results.pack_name(keys)} from its checkpoint")
                outcomes = train_pack(configs, **self.kw, stored=done)
                for c, outcome in zip(configs, outcomes):
                    (self.failed if isinstance(outcome, Exception) else self.got)(c, outcome)

    def take_up_deferred(self) -> None:
        for c in self.deferred:
            with self.claim(c.key, wait=True):
                done = _stored(c, self.directory, self.ctx)
                if done is not None:
                    self.got(c, done)
                else:
                    self.train_one(c)


def run_many(configs, *, pack: bool | int | str = "auto", directory=None, force: bool | str = False, progress: bool = True,
             device: str = "auto", checkpoint: bool | str | None = None, save_weights: bool | None = None,
             compile: bool | str = "auto", log: Callable[[str], None] = print,
             held: list | None = None, on_record: Callable[[RunConfig, dict], None] | None = None,
             on_diverged: Callable[[RunConfig, NonFiniteLossError], None] | None = None) -> list[dict]:
    """The records of ``configs``, in order: stored ones reused, the others trained, runs of one
    ``pack_group`` together as packs (``fptlib.train.packed``). ``pack``: "auto" (by memory on
    CUDA, the benchmark's size on a CPU), a pack size K, or False / 1 to train one run at a time.
    A ``bit-memory`` init's pretraining is trained first (``ensure_pretraining``).
    A run another process is training (``files.claim_run``) is waited for at the end and its record
    read; with a list ``held``, such runs are appended to it instead and left out of the returned
    records (the caller takes them up later). A run whose loss became NaN raises its
    NonFiniteLossError after the others are stored. ``on_record(config, record)`` is called for each
    record as soon as it is stored or found (``reproduce`` writes its manifest entry there), so a
    stop in the middle of a group loses nothing of the runs that finished. ``force``: True trains
    every run again; ``"weightless"`` (``WEIGHTLESS``) the stored runs whose trained weights are not
    here, checked as each run is claimed (another process may have trained it meanwhile). With ``on_diverged``, a run
    whose loss became NaN is passed to it (with its error) instead, and the others go on."""
    check_outputs(configs, directory, checkpoint=checkpoint)
    state = _Runs(configs, pack=pack, directory=directory, force=force, log=log, on_record=on_record,
                  on_diverged=on_diverged, progress=progress, device=device, checkpoint=checkpoint,
                  save_weights=save_weights, compile=compile)
    todo: dict[str, dict[str, RunConfig]] = {}
    for c in configs:
        done = state.stored(c)
        if done is not None:
            state.got(c, done)
        else:
            todo.setdefault(pack_group(c), {})[c.key] = c
    for group in todo.values():
        state.run_group(list(group.values()))
    if held is not None:
        held.extend(state.deferred)
        state.deferred = []
    state.take_up_deferred()
    if state.errors:
        raise state.errors[0]
    return [state.records[c.key] for c in configs if c.key in state.records]


def _stored(config: RunConfig, directory, ctx) -> dict | None:
    """The stored record of ``config`` or None; under DDP rank 0's answer (the processes train together)."""
    return distributed.from_main(results.get(config.key, store_dir(config.profile, directory)) if ctx.is_main else None,
                                 ctx)


def reproduce(name: str, profile: str = "quick", *, backbone: str | None = None, directory=None,
              progress: bool = True, device: str = "auto", log: Callable[[str], None] = print,
              compile: bool | str = "auto", pack: bool | int | str = "auto", retrain_weightless: bool = False,
              **changes) -> list[dict]:
    """Run every configuration of a table that the store does not have yet; return all records
    in the table's order, each labelled with its place in THIS table (a run shared with another
    table is stored once, under the label of the table that ran it first). Runs are taken group by
    group (:func:`compatible_groups`: the seeds and learning rates of one setting together), and a
    group's runs train as packs where they can (``pack``: see ``run_many``; a ``bit-memory`` init's
    pretraining first). Runs whose data or backbone is not available here are skipped with a
    message. Resumable: a finished run is skipped, so a table can be produced over several
    sittings. At the evidence profile the records go to the tracked ``results/evidence/``
    (``store_dir``) and each run trained here gets a manifest entry (``files.add_to_manifest``:
    command, hardware, wall time, commit, created_at), written atomically as soon as its record is
    stored (``run_many``'s ``on_record``). ``retrain_weightless``: also train again the stored runs
    whose record names trained weights that are not here (a clone holds only the weights that were
    committed), keeping their weights; each new record replaces the old one (``weightless``)."""
    configs = catalogue.table(name, profile, backbone, **changes)
    check_outputs(configs, directory)
    folder = store_dir(profile, directory)
    command = f"python -m fptlib reproduce {catalogue.canonical(name)} --profile {profile}" + \
        (f" --backbone {backbone}" if backbone else "")
    command += "".join(f" [{k}={v}]" for k, v in changes.items()) + (" --retrain-weightless" if retrain_weightless else "")
    groups = compatible_groups(configs)
    log(f"{name}: {len(configs)} configurations, {sum(map(len, groups))} distinct runs "
        f"in {len(groups)} groups (differing in {' or '.join(GROUP_VARIES)} only)")
    stored = {c.key for g in groups for c in g if results.get(c.key, folder) is not None}
    # the runs trained again keep their record's label (the table that ran them first)
    records = {k: results.get(k, folder) for k in stored} if retrain_weightless else {}
    again = {k: r["label"] for k, r in records.items() if weightless(r, folder)}
    if again:
        log(f"{len(again)} stored runs have no trained weights here: trained again, keeping them")
    stored -= set(again)
    if profile == files.EVIDENCE:
        left = [c for g in groups for c in g if c.key not in stored]
        runs = f"{len(left) - len(again)} runs not stored yet" + (f" and {len(again)} trained again" if again else "")
        log(f"{runs}: about {sum(map(run_seconds, left)) / 3600:.1f} CPU-hours on a "
            f"2-core CPU like the one that measured experiments.STEP_SECONDS (one process per core)")
    by_key: dict[str, dict] = {}

    def note(cfg: RunConfig, record: dict) -> None:     # as each run finishes, not as its group does
        by_key[record["key"]] = record
        if profile == files.EVIDENCE:
            pre = catalogue.pretraining_config(cfg) if cfg.init == "bit-memory" else None
            _add_to_manifest(folder, record, command, pre)

    _reproduce_groups(groups, stored, log, note, again, pack=pack, directory=directory, progress=progress,
                      device=device, compile=compile)
    return [{**by_key[c.key], "label": {"table": c.table, "row": c.row, "column": c.column}}
            for c in configs if c.key in by_key]


WEIGHTLESS = "weightless"


def weightless(record: Mapping | None, directory=None) -> bool:
    """A stored record that names trained weights which are not in the store (e.g. a clone: only
    some weights are committed)."""
    return bool(record and record.get("weights")) and not results.weights_path(record["key"], directory).is_file()


def _reproduce_groups(groups, stored: set, log: Callable[[str], None], note, again: Mapping | None = None,
                      **run_kw) -> None:
    """``reproduce``'s loop: each group through ``run_many`` (runs another process holds are
    taken up after every other group), a group whose task or backbone is not here skipped; the
    runs in ``again`` (key -> their record's label) are trained again (forced) with their weights
    kept, under the label they had."""
    again = again or {}
    held: list[RunConfig] | None = []           # runs another process is training, taken up at the end
    count, i = sum(map(len, groups)), 0
    for group in groups + [None]:   # one task and backbone per group: available or not together
        if group is None:
            group, held = held, None
            if not group:
                break
            log(f"waiting for {len(group)} run(s) another process is training")
        for cfg in group if held is not None else ():
            i += 1
            log(f"[{i}/{count}] " + (f"done already: {cfg.row} / {cfg.column} ({cfg.key})" if cfg.key in stored else
                                     f"running {cfg.row} / {cfg.column}: {cfg.describe()}"))
        try:
            redo = [dataclasses.replace(c, **again[c.key]) for c in group if c.key in again]
            if redo:
                run_many(redo, log=log, held=held, on_record=note, force=WEIGHTLESS, save_weights=True, **run_kw)
            run_many([c for c in group if c.key not in again], log=log, held=held, on_record=note, **run_kw)
        except (FileNotFoundError, BackboneUnavailable) as err:
            log(f"    skipped {len(group)} run(s) of {group[0].task} / {group[0].backbone}, not available here: {err}")


def _add_to_manifest(folder, record: Mapping, command: str, pretraining: RunConfig | None = None) -> None:
    """The manifest entry of a record trained (or first seen) here, and of the Bit Memory
    pretraining run that an init run needs (trained before it: ``ensure_pretraining``); an entry already there is kept unless its
    record was trained again since (another ``created_at``: a weightless pretraining retrained)."""
    manifest = files.read_manifest(results.results_dir(folder))
    pre = results.get(pretraining.key, folder) if pretraining is not None else None
    for rec in (pre, record):
        if rec is not None and (manifest.get(rec["key"]) or {}).get("created_at") != rec.get("created_at"):
            files.add_to_manifest(results.results_dir(folder), rec["key"], manifest_entry(rec, command))


def manifest_entry(record: Mapping, command: str) -> dict:
    """How one run was produced, for the evidence manifest (wall time: the record's, a pack's
    when it trained packed)."""
    label = record.get("label") or {}
    return {"command": command, "hardware": record.get("hardware") or env.hardware(),
            "wall_time_s": record.get("wall_time_s"), "commit": record.get("git_commit") or env.git_commit(),
            "created_at": record.get("created_at"), "table": label.get("table"), "row": label.get("row"),
            "column": label.get("column"), "seed": record.get("seed")}
