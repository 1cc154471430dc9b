"""The staged pipeline: stage registry, artifacts, manifest, cache keys and the runner."""
