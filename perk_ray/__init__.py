"""perk-ray: PERK (long-context reasoning as parameter-efficient test-time learning) on Ray."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("perk-ray")
except PackageNotFoundError:  # a checkout on sys.path without an install
    __version__ = "0.0.0+unknown"
