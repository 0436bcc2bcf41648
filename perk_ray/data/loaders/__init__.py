"""Loaders for real long-context data in their published formats (local files, or the hub through datasets)."""

from perk_ray.data.loaders.babilong import load_babilong
from perk_ray.data.loaders.hotpotqa import load_hotpotqa
from perk_ray.data.loaders.triviaqa import load_triviaqa

__all__ = ["load_babilong", "load_hotpotqa", "load_triviaqa"]
