"""redfix: investigate CI failures of Docker Swarm app recipes.

Data flows one way: params -> runs -> evidence -> bundle -> verdict -> report.
The single public entry point for a whole investigation is `investigate()`.
"""
__version__ = "0.1.0"

from .params import load_case, load_cases  # noqa: E402
from .bundle import Bundle, load_bundle  # noqa: E402

__all__ = ["Bundle", "investigate", "load_bundle", "load_case", "load_cases"]


def investigate(case_path, out_dir, **kw):
    """Run one case end to end (runs + evidence + verdict). See pipeline.investigate."""
    from .pipeline import investigate as _inv
    return _inv(case_path, out_dir, **kw)
