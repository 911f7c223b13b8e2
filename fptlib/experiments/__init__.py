"""Run settings, the paper's tables as configurations at three profiles, what runs cost, and
running them: one run or many. One package, one module per concept; every name is also here, so
``from fptlib import experiments; experiments.X`` reads as before:

- ``settings``: profiles (``PROFILES``, ``PROFILE_SETTINGS``, ``STAND_INS``, ``SEEDS``, ``LR_GRID``),
  ``RunConfig``, ``config`` (THE settings of a run), ``check_settings`` / ``check_outputs``,
  ``choose_profile``, ``describe_setting``, and ``same_run`` (the one rule of "the same run, up to X").
- ``catalogue``: every table and run set as configurations (``TABLES``, ``RUN_SETS``, ``NOT_RUN``,
  ``table``, ``names``, ``canonical``, ``attention_config``, ``pretraining_config``).
- ``cost``: ONE cost model: ``STEP_SECONDS``, ``estimate``, ``seconds_for``, and the measured warm-up
  and ``plan`` the notebooks print before a long cell.
- ``models``: ``build`` (untrained; never trains) and ``load_model`` (trained weights).
- ``single``: one run: ``run``, ``train``, ``ensure_pretraining`` (a ``bit-memory`` init's prerequisite).
- ``many``: ``run_many`` (packs, a lock per run), ``reproduce`` (a table, group by group, the
  evidence manifest).

Where a run's files live (record, weights, checkpoints, the evidence store) is ``fptlib.results``'s.
"""
import dataclasses  # noqa: F401  (experiments.dataclasses: tests/test_train_toy.py reads it)

from fptlib.results import weights_path  # noqa: F401  (a thin alias: results owns where a run's files live)

from fptlib.experiments.settings import (  # noqa: F401
    EVIDENCE_BACKBONE, EVIDENCE_NOTE, EVIDENCE_TASKS, FULL_SIZE_NOTE, FULL_TASKS, FULL_TRANSFORMER_LAYERS,
    GROUP_VARIES, INITS, LISTOPS_CORRECTED, LISTOPS_CORRECTED_OFFLINE_MAX_LEN, LR_GRID, LSTM_LR, MAX_BATCH, MAX_SEED,
    PROFILE_SETTINGS, PROFILES, QUICK_TASKS, RESUMABLE, SAME_RUN_UP_TO, SEEDS, STAND_INS, TARGETS,
    TIMESERIES_LAYERS, TIMESERIES_SETTINGS, TIMESERIES_TASK, VARIANTS, _OMITTED_AT_DEFAULT, RunConfig,
    check_outputs, check_profile, check_settings, choose_profile, config, describe_setting, profile_notes,
    resolve_backbone, same_run, store_dir, varies,
)
from fptlib.experiments.catalogue import (  # noqa: F401
    ALIASES, ATTENTION_INITS, ATTENTION_LENGTHS, ATTENTION_LONGER, BUDGET, CRITIQUE_EVIDENCE,
    CRITIQUE_EVIDENCE_TASKS, CRITIQUE_QUICK, CRITIQUE_ROWS, IMAGE_EPOCH, IMAGE_EPOCH_ROWS, INIT_EVIDENCE_TASKS,
    LADDER, NOT_RUN, QUICK_ABLATION_TASKS, RUN_SETS, TABLE1_EVIDENCE_TASKS, TABLES, TIMESERIES_ROWS,
    TUNED_COLUMNS, _architecture, _attention, _backbones, _base, _compute, _depth, _image_epoch, _init, _label,
    _ladder, _layernorm, _lr_critique, _lstm, _model_size, _more_than_fpt, _table1, _tasks, _timeseries,
    _tuned_lr, _with_listops_variant, _with_seeds, attention_config, canonical, names, not_run,
    pretraining_config, table, tuned_lrs,
)
from fptlib.experiments.cost import (  # noqa: F401
    EVAL_OVERHEAD, EVIDENCE_ORDER, LSTM_COST, OUTPUT_ONLY_COST, STEP_SECONDS, TRAINED_ALL, Plan, Warmup,
    duration, estimate, labelled, measure, plan, run_kind, run_seconds, seconds_for, trains_blocks,
)
from fptlib.experiments.models import (  # noqa: F401
    LOADED_WEIGHTS_LOG, PretrainingMissing, bit_memory_backbone, build, load_model,
)
from fptlib.experiments.single import (  # noqa: F401
    CHECKPOINT_AFTER_SECONDS, FRESH_DATA_NOTE, MAX_SAVED_TRAINED, OUTPUT_ONLY, checkpoint_folder, store_record,
    ensure_pretraining, packed_note, run, train, train_config, uses_feature_cache,
)
from fptlib.experiments.many import (  # noqa: F401
    _add_to_manifest, _stored, compatible_groups, manifest_entry, pack_group, reproduce, run_many, train_pack,
)

# the names before (tests and notes use them)
_run_seconds, _checkpoint_dir = run_seconds, checkpoint_folder
