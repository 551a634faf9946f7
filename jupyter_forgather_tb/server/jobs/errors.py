"""The job manager's errors: what a caller should show the user (handlers map them to HTTP)."""


class ManagerError(Exception):
    """Base of the errors a caller should show to the user."""


class JobNotFound(ManagerError):
    """No job has this id."""


class PortInUse(ManagerError):
    """The requested TCP port is taken."""


class QueueFull(ManagerError):
    """Too many jobs are waiting already; the caller should retry later."""


class JobStillLive(ManagerError):
    """The job has not ended, so it cannot be relaunched."""


class JobNotRunning(ManagerError):
    """The job is not running, so its TensorBoard cannot be asked anything."""


class BackendFailed(ManagerError):
    """The job's TensorBoard could not be reached, or answered with an error."""


class BackendTimeout(ManagerError):
    """The job's TensorBoard did not answer in time."""


class NotSuspended(ManagerError):
    """The job is not suspended, so there is nothing to wake."""
