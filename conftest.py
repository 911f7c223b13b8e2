"""The environment of every pytest run, tests/ and notebooks/ alike (notebook kernels inherit it).

Set here, at the repository root, so that ``pytest notebooks/`` alone runs the notebooks the
same way the whole suite does.
"""
import os

# Tests never reach the network: the hub is declared offline before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# One thread (for the notebook kernels too, which inherit it): float sums come out in one order, so a
# notebook's training outputs do not depend on the machine's load (env.tune_cpu_threads picks 1 or 2
# threads by load otherwise); tools/run_notebooks.py executes the committed outputs the same way.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The notebooks run as a check here (fptlib.notebook.NotebookContext.checking): cells whose output
# nbval ignores may shrink a costly loop (notebook 12's evidence ablations, its 30-layer SmolLM2 run).
os.environ.setdefault("FPT_NOTEBOOK_CHECK", "1")
