"""Simulated homes, labelled scenarios, and replay of recorded or simulated streams."""
