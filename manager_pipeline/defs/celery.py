"""dagster-celery, with each step of a run in its environment's queue, and the Celery app of
``manager-pipeline worker``. The queue names are this module's: a worker listens by environment."""

from __future__ import annotations

import warnings

from celery.exceptions import DuplicateTaskNameWarning
from dagster import build_reconstructable_job, execute_job, executor, multiple_process_executor_requirements
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor  # beyond dagster-celery's exports: see EnvironmentQueues

from manager_pipeline.config.model import ManagerConfig
from manager_pipeline.defs.partitions import partition_key, split_partition_key
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings, hand_down_worker

# Runs of no deploy partition (none today): dagster-celery's own queue.
DEFAULT_QUEUE = "dagster"


def queue_for(environment: str) -> str:
    """The Celery queue of an environment's steps: its name (workers listen by environment)."""
    return environment


# dagster-celery 0.29.27 exports `celery_executor` only. Its queue is fixed by its config (`config_source:
# task_default_queue`) or per op (the `dagster-celery/queue` tag); neither knows a run's partition, and a
# run's steps must go to the queue of the run's environment. Dagster's public way to vary the executor's
# config by partition is a PartitionedConfig on every partitioned job, valid only with this executor, so
# the job definitions would depend on MANAGER_EXECUTOR. The choice is made here instead, at the one place
# that leans on dagster-celery beyond its exports: its CeleryExecutor class (its constructor's arguments,
# its `config_source`, which its execution loop makes the run's Celery app from, and `execute`).
# pyproject pins dagster-celery==0.29.27; tests/integration/test_celery.py sees a step on the wrong queue.
class EnvironmentQueues(CeleryExecutor):
    """dagster-celery's executor, sending a run's steps to the queue of the run's environment (its partition)."""

    def execute(self, plan_context, execution_plan):
        key = plan_context.get_tag("dagster/partition")
        # dagster-celery sends a step without its own queue tag to the app's default queue.
        self.config_source.task_default_queue = queue_for(split_partition_key(key)[1]) if key else DEFAULT_QUEUE
        # dagster-celery registers its one task again for every step it sends: harmless, and said each time.
        warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
        return super().execute(plan_context, execution_plan)


@executor(
    name="celery", config_schema=celery_executor.config_schema, requirements=multiple_process_executor_requirements()
)
def celery_environment_executor(init_context):
    # dagster-celery's public executor reads its own config (broker, backend, retries); only the queue is ours.
    made = celery_executor.executor_creation_fn(init_context)
    return EnvironmentQueues(
        retries=made.retries,
        broker=made.broker,
        backend=made.backend,
        include=made.include,
        config_source=vars(made.config_source),
    )


# A worker acknowledges a step when it is done, not when it takes it: a worker killed mid-step leaves the
# step to another worker of its queue (the broker gives it again), which fails or finishes it cleanly (an
# apply is applied once: the plan's state says so, plans/state.py). RabbitMQ's consumer_timeout (30 min
# by default) must exceed the longest apply.
# The run's process asks the result backend about each step every second and a worker writes each step's
# result there: a moment the backend does not answer (a loaded machine, a Redis restart) is retried, not
# taken for the step's failure (which dagster-celery turns into the whole run failing outside its steps).
RESULT_SETTINGS = {"result_backend_always_retry": True, "result_backend_max_retries": 20}
WORKER_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    **RESULT_SETTINGS,
}


def worker_app(broker: str, backend: str):
    """The Celery app of a worker: dagster-celery's worker app (the module its docs give to ``celery -A``, with
    its one task), on the executor's broker and result backend, acknowledging a step when it is done."""
    from dagster_celery.app import app

    app.conf.update(broker_url=broker, result_backend=backend, **WORKER_SETTINGS)
    return app


def check_worker(settings: Settings, config: ManagerConfig, environments: list[str]) -> None:
    """Whether this machine may take the steps of ``environments``: Celery is the executor, and it holds
    each environment's credentials (its profile, or a role it may assume). A ManagerError of one line
    says what is missing, so a worker that lacks them never listens on their queues."""
    if settings.executor != "celery":
        raise ManagerError(
            "a worker takes the steps of runs on Celery: set MANAGER_EXECUTOR=celery here as for the code location "
            "(with the same MANAGER_DATABASE_URL, PLAN_ARTIFACT_BUCKET and AWS settings)"
        )
    from manager_pipeline.defs.resources import build_resources

    aws = build_resources(settings.for_worker(environments))["aws"]
    for environment in environments:
        aws.target(environment, config.policy(environment).aws)


def run_worker(settings: Settings, environments: list[str], concurrency: int, name: str) -> None:
    """Take the steps of ``environments`` (their queues) until stopped; this process is the worker. Its
    pool processes act for those environments only (MANAGER_WORKER_ENVIRONMENTS, AwsResource)."""
    hand_down_worker(environments)
    app = worker_app(settings.celery_broker, settings.celery_backend)
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--queues={','.join(queue_for(environment) for environment in environments)}",
            f"--hostname={name}@%h",
            f"--concurrency={concurrency}",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def execute_on_workers(job_name: str, instance, source: str, environment: str, tags: dict[str, str], run_config: dict):
    """Run ``job_name`` for one partition, this process orchestrating and the steps on the workers of
    the environment's queue. The instance must be one every worker reaches (PostgreSQL)."""
    if type(instance.run_storage).__name__.startswith("Sqlite"):
        raise ManagerError(
            f"MANAGER_EXECUTOR=celery: the Dagster instance in {instance.root_directory} keeps runs in SQLite, which "
            "workers on other machines cannot reach; give it PostgreSQL storage (docs/scale.md)"
        )
    # Named, not imported: each worker rebuilds the job from the code location (defs/definitions.py) itself.
    job = build_reconstructable_job("manager_pipeline.defs.definitions", "location_job", (job_name,))
    key = partition_key(source, environment)
    partition = {"dagster/partition": str(key)} | {
        f"dagster/partition/{dimension}": value for dimension, value in key.keys_by_dimension.items()
    }
    return _Finished(execute_job(job, instance=instance, tags={**tags, **partition}, run_config=run_config))


class _Finished:
    """A run done on the workers, as the CLI reads one run in process: its outputs are loaded (through the
    IO manager, on this machine) when asked for."""

    def __init__(self, result):
        self._result = result
        self.success, self.run_id, self.all_events = result.success, result.run_id, result.all_events

    def output_for_node(self, node: str):
        with self._result as result:
            return result.output_for_node(node)
