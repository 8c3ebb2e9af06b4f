"""Two exception trees, as in Polygraphy.

``UserError`` is something the user can fix (bad spec, missing model, unknown
sweep id): the CLI prints one ``Error: ...`` line and exits 1. Anything else
is an internal bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment; shown as one line."""


class SpecError(UserError):
    """The sweep spec is invalid. The message names the field."""


class ModelError(UserError):
    """The model file is missing, unreadable or not ONNX."""


class NotFoundError(UserError):
    """An id, model or result the user named does not exist."""


class MissingDependencyError(UserError):
    """A backend needs a Python package that is not installed here."""


class EnvironmentFault(UserError):
    """The setup of the host or farm, not the job, is at fault (the store
    refuses the credentials, its bucket is missing, it cannot be written or
    reached): one line for a command; a worker hands the job back and stops
    taking jobs instead of failing it (workers/faults.py)."""


class StoreIntegrityError(Exception):
    """An artifact's bytes no longer match its content hash (internal)."""


class ArtifactMissingError(FileNotFoundError):
    """The database names an artifact the store does not hold (deleted)."""


class BackendUnsupported(Exception):
    """Raised by a backend when it cannot do what a job asks on this device.

    The job ends as ``unsupported`` with the message as its reason; it is not
    retried and never crashes the worker.
    """
