"""Ray Serve application for perk-ray: per-request context encoding into adapters, answering from them.

Start it with ``serve run serving.app:perk``; see docs/serving.md.
"""
