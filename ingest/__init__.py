"""Ingest: receive readings over MQTT, judge them, de-duplicate, store, hand on to detection."""
