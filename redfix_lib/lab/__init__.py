"""The embedded lab: a real local Docker Swarm that behaves like a cc-ci node."""
import os
from pathlib import Path

LAB_DIR = Path(__file__).parent
RECIPES_SRC = LAB_DIR / "recipes"
HARNESS_DIR = LAB_DIR / "harness"
BASE_IMAGE = "redfix-lab/base:1"
LAB_LABEL = "redfix.lab"


def lab_home() -> Path:
    return Path(os.environ.get("REDFIX_LAB_HOME", "/var/lib/redfix-lab"))


# The lab node's harness settings (cf. cc-ci's /etc/cc-ci/settings.toml): written by `lab up`,
# handed to every lab harness run as CCCI_SETTINGS (the sweep and the lab cases).
NODE_SETTINGS = """\
# The lab node's harness settings (cc-ci: /etc/cc-ci/settings.toml; written by `redfix lab up`).
# Not cc-ci's default: the upgrade tier ignores the warm canonicals and starts from the newest
# release tag older than the head (cc-ci's no-canonical fallback), as an operator might set it
# while debugging the canonical sweep.
[upgrade]
skip_canonicals_for_upgrade = true
"""


def settings_file(home: Path | None = None) -> Path:
    return (home or lab_home()) / "etc" / "cc-ci" / "settings.toml"


def write_node_settings(home: Path | None = None) -> Path:
    """The lab node's harness settings file (every `lab up` rewrites it)."""
    from ..bundle import atomic_write_text
    f = settings_file(home)
    f.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f, NODE_SETTINGS)
    return f
