"""Detection: rules over each home's readings, driven by event time."""
