"""nbval hooks for the course notebooks.

Outputs that never compare equal between two executions are not compared: widget views, images,
and the HTML / JavaScript that bertviz and ipywidgets emit (a fresh random element id each time).
Text outputs (``text/plain``, ``text/markdown``, ``stream``) are compared after the sanitizers of
``nbval_sanitize.cfg``.
"""

SKIP_COMPARE = (
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
    "text/html",
    "image/png",
    "image/svg+xml",
    "image/jpeg",
)


def pytest_collectstart(collector):
    if collector.fspath and collector.fspath.ext == ".ipynb" and hasattr(collector, "skip_compare"):
        collector.skip_compare += tuple(m for m in SKIP_COMPARE if m not in collector.skip_compare)
