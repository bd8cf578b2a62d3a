"""Live-warm providers and stable warm domains (cf. cc-ci runner/harness/warm.py)."""
from .canonical import BASE_DOMAIN


def stable_domain(recipe: str) -> str:
    return f"warm-{recipe}.{BASE_DOMAIN}"


# live-warm providers other stacks depend on (a shared SSO), kept deployed by the node
WARM_DOMAINS = {
    "keycloak": stable_domain("keycloak"),
}
