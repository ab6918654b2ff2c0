"""The one exception type the CLI turns into a clean one-line error (no traceback)."""


class AdvmilpError(Exception):
    """A user-facing failure: bad config, missing or corrupted file, unknown name."""


class DataError(AdvmilpError):
    """MNIST files missing, truncated or failing their checksum."""


class NetworkError(AdvmilpError):
    """A network file that cannot be loaded or does not describe a dense ReLU network."""


class ConfigError(AdvmilpError):
    """An invalid experiment configuration."""


class InvalidValue(AdvmilpError):
    """A value out of its range, naming the field (``time_limit must be ...``).  The command line
    names its option instead (``--time-limit must be ...``), the config loader its key."""

    def __init__(self, field: str, text: str):
        self.field, self.text = field, text
        super().__init__(f"{field} {text}")
