"""Packaged configuration: rule defaults (`rules.yaml`) and the demo home."""
