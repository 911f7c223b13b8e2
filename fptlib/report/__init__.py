"""Tables for a reader: every "ours beside the paper's" table, the claims with computed verdicts, the
results summary and what this machine has, all drawn by ONE renderer (:class:`Table`, markdown in
Jupyter and in ``print``). One module per concept, every name also here (``report.X``):

- ``render``: ``Table``, ``markdown_table``, ``as_percent``.
- ``paper_tables``: the cells of a table (``cells``), ``paper_table``, ``run_set_table``,
  ``named_table``, ``table_markdown`` (``table``), ``table_subset``, ``evidence_table``, ``summary``, ``progress``,
  ``backbone_table``, ``task_table``, the trivial baselines.
- ``verdicts``: ``claims`` (the paper's), ``evidence_claims`` (on the committed evidence),
  ``timeseries_claims`` (One Fits All's and Tan et al.'s), ``claim_seeds``.

The layer above ``experiments``: it reads configurations (which runs make a paper table) and
records (``fptlib.results``), and never trains.
"""
from fptlib import experiments, paper, results, stats, sweeps, tasks  # noqa: F401  (report.results, ...)

from fptlib.report.render import (  # noqa: F401
    COLUMN_GAP, TERMINAL_WIDTH, Table, _fit_widths, _fmt, _wrap_row, as_percent, markdown_table,
)
from fptlib.report.paper_tables import (  # noqa: F401
    QUICK_NOTE, SUMMARY_COLUMNS, Cell, _backbone_text, _cell_row, _lr_text, _ours, _selected_test, _size_row,
    _subset, _summarize, backbone_table, baseline_rows, baselines_table, cells, evidence_table, named_table, paper_table,
    progress, ran_with, results_table, run_set_table, subset_configs, summary, table, table_markdown, table_subset,
    task_available, task_baselines, task_table,
)
from fptlib.report.verdicts import (  # noqa: F401
    CLAIM_COLUMNS, CLAIM_OURS, TIMESERIES_WHERE, _baselines, _claim_verdict, _Settings, claim_seeds, claims,
    evidence_claims, evidence_profile, timeseries_claims,
)
