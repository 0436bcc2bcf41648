"""Errors that perk-ray raises for bad input, each naming the field and the limit."""


class PerkError(ValueError):
    """Base class of perk-ray's user-facing errors."""


class ConfigError(PerkError):
    """A configuration field, preset or override is invalid."""


class InputError(PerkError):
    """A context, question or data record is invalid (empty, too long, missing a column...)."""


class CheckpointError(PerkError):
    """A checkpoint is missing, incomplete or belongs to another base model."""
