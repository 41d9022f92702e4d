"""The one error base class of hitcast.

Every error hitcast raises on purpose derives from :class:`HitcastError` and names
the offending file, column, row or configuration key in its message.
"""


class HitcastError(Exception):
    """Base class for every error hitcast raises deliberately."""


class ConfigError(HitcastError):
    """A configuration file or ``--set`` override is invalid (the message names the key)."""


class InputContractError(HitcastError):
    """An input file breaks the documented input contract (the message names file and column)."""


class TableMissingError(HitcastError):
    """A Delta table a stage needs does not exist yet (the message names the table and the job to run)."""
