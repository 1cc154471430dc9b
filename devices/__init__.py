"""Targets, latency measurement and report writers. Device side: never imports torch."""
