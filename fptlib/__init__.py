"""fptlib: Frozen Pretrained Transformers, small and readable.

See docs/ARCHITECTURE.md for how the modules fit together.
"""
__version__ = "0.1.0"
