"""Hooks the C extension calls while (de)serializing, and the mapping from
runtime error codes to manta's exception types."""

from manta import _manta
from manta import exceptions as exc


def _rebuild_ref(object_id, owner):
    """Unpickle an ObjectRef: registers this process as a borrower."""
    return _manta.ref_from_wire(object_id, owner)


class ErrorValue:
    """What get() finds for an object whose task failed."""

    __slots__ = ("code", "text", "exc")

    def __init__(self, code, text, exc_value):
        self.code = code
        self.text = text
        self.exc = exc_value

    def as_exception(self, ref_hex=""):
        if self.exc is not None:
            e = self.exc
            if self.code == _manta.EACTORINIT and isinstance(e, exc.RayTaskError):
                # The actor's constructor raised: every call sees the actor dead.
                return exc.ActorDiedError(e)
            if isinstance(e, exc.RayTaskError):
                return e.as_instanceof_cause()
            return e
        code = self.code
        if code == _manta.EWORKERDIED:
            return exc.WorkerCrashedError()
        if code == _manta.EOWNERDIED:
            return exc.OwnerDiedError(ref_hex, None, "")
        if code == _manta.EOBJLOST:
            return exc.ObjectLostError(ref_hex, None, "")
        if code == _manta.ERECONSTRUCT:
            return exc.ObjectReconstructionFailedMaxAttemptsExceededError(ref_hex, None, "")
        if code == _manta.EUNSCHEDULABLE:
            if self.text.startswith("The actor"):
                return exc.ActorUnschedulableError(self.text)
            return exc.TaskUnschedulableError(self.text)
        if code == _manta.ECANCELLED:
            return exc.TaskCancelledError(None, self.text or None)
        if code == _manta.ESTOREFULL:
            return exc.ObjectStoreFullError(self.text)
        if code == _manta.EOOM:
            return exc.OutOfMemoryError(self.text)
        if code in (_manta.EACTORDIED, _manta.EACTORINIT):
            return exc.ActorDiedError({"error_message": self.text})
        return exc.RaySystemError(self.text)

    def __repr__(self):
        return f"ErrorValue({self.code}, {self.text!r}, {self.exc!r})"
