"""Canonical (data-warm) domain scheme (cf. cc-ci runner/harness/canonical.py)."""
import os

BASE_DOMAIN = "lab.redfix.test"
# harness fix for the keycloak case: a collision-free prefix for data-warm canonicals
CANONICAL_PREFIX = os.environ.get("CCCI_CANONICAL_PREFIX", "warm-")


def canonical_domain(recipe: str) -> str:
    return f"{CANONICAL_PREFIX}{recipe}.{BASE_DOMAIN}"


def stack_name(domain: str) -> str:
    return domain.replace(".", "_")
