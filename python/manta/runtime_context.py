"""manta.get_runtime_context(): ids and resources of the calling process."""

from manta._private import worker as _worker


class RuntimeContext:
    """Information about the current driver, task or actor."""

    def get_job_id(self):
        task = _worker.current_task()
        job = task.job_id if task else _worker.state.info.get("job_id", 0)
        return int(job).to_bytes(4, "little").hex()  # Ray's JobID: 4 bytes, little-endian

    @property
    def job_id(self):
        return self.get_job_id()

    def get_node_id(self):
        return _worker.state.info.get("node_id")

    @property
    def node_id(self):
        return self.get_node_id()

    def get_worker_id(self):
        return _worker.state.info.get("worker_id")

    def get_task_id(self):
        task = _worker.current_task()
        return task.task_id if task else None

    @property
    def task_id(self):
        return self.get_task_id()

    def get_task_name(self):
        task = _worker.current_task()
        return task.name if task else None

    def get_actor_id(self):
        task = _worker.current_task()
        return task.actor_id if task else None

    @property
    def actor_id(self):
        return self.get_actor_id()

    def get_assigned_resources(self):
        task = _worker.current_task()
        return dict(task.resources) if task else {}

    def get_accelerator_ids(self):
        return {"GPU": [str(g) for g in _worker.get_gpu_ids()]}

    @property
    def namespace(self):
        return _worker.state.namespace

    def get_namespace(self):
        return self.namespace

    @property
    def was_current_actor_reconstructed(self):
        return False

    @property
    def current_actor(self):
        raise RuntimeError("This method is only available in an actor.")

    def get(self):
        return {"job_id": self.get_job_id(), "node_id": self.get_node_id(),
                "task_id": self.get_task_id(), "actor_id": self.get_actor_id()}


def get_runtime_context():
    _worker.ensure_initialized()
    return RuntimeContext()
