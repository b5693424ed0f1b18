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
            if self.text.startswith("actor_id="):
                return exc.ActorUnschedulableError(
                    _actor_death_context(self.text)["error_message"])
            return exc.TaskUnschedulableError(self.text)
        if code == _manta.ECANCELLED:
            return exc.TaskCancelledError(None, self.text or None)
        if code == _manta.ESTOREFULL:
            return exc.ObjectStoreFullError(self.text)
        if code == _manta.EOOM:
            return exc.OutOfMemoryError(self.text)
        if code in (_manta.EACTORDIED, _manta.EACTORINIT):
            return exc.ActorDiedError(_actor_death_context(self.text))
        return exc.RaySystemError(self.text)

    def __repr__(self):
        return f"ErrorValue({self.code}, {self.text!r}, {self.exc!r})"


def _actor_death_context(text):
    """The fields of Ray's ActorDiedErrorContext from the runtime's text: a
    first line "actor_id=<hex> class_name=<name>", then why the actor died."""
    head, sep, why = text.partition("\n")
    if not sep or not head.startswith("actor_id="):
        return {"error_message": text}
    actor_id, _, class_name = head[len("actor_id="):].partition(" class_name=")
    return {"actor_id": actor_id or None, "class_name": class_name, "error_message": why}
