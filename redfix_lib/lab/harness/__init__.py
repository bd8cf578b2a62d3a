"""The lab's CI harness: a small cc-ci look-alike (import-pure modules + one runner script)."""
