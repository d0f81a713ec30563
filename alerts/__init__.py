"""Alerts: each occurrence's state, and getting it to the people in the home's circle."""
