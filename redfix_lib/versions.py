"""The versions every output records: redfix, the signature catalogue, the static ruleset and the
classifier. One function, called by every writer (verdict.json, STATUS.md/html, manifest.json,
fix.json, sweep.json), so an output always says which analysis produced it."""
from __future__ import annotations


def versions() -> dict:
    from . import __version__
    from .classify import CLASSIFIER_VERSION
    from .rules import RULESET_VERSION
    from .signatures import load_catalogue
    return {"redfix": __version__, "catalogue": f"signatures-v{load_catalogue().version}",
            "ruleset": RULESET_VERSION, "classifier": CLASSIFIER_VERSION}
