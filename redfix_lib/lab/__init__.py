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
