"""dagster-celery, with each step of a run in its environment's queue (defs/executor.py), and the
Celery app of ``manager-pipeline worker``."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace

from celery.exceptions import DuplicateTaskNameWarning
from dagster import executor, multiple_process_executor_requirements
from dagster._core.execution.retries import RetryMode
from dagster_celery.config import dict_wrapper
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from manager_pipeline.config import ManagerConfig
from manager_pipeline.defs.executor import DEFAULT_QUEUE, queue_for
from manager_pipeline.defs.partitions import partition_key, split_partition_key
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings


class EnvironmentQueues(CeleryExecutor):
    """The Celery executor, sending a run's steps to the queue of the run's environment (its partition)."""

    def execute(self, plan_context, execution_plan):
        key = plan_context.dagster_run.tags.get("dagster/partition")
        queue = queue_for(split_partition_key(key)[1]) if key else DEFAULT_QUEUE
        # dagster-celery sends a step without its own queue tag to the app's default queue.
        self.config_source = dict_wrapper({**vars(self.config_source), "task_default_queue": queue})
        # dagster-celery registers its one task again for every step it sends: harmless, and said each time.
        warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
        return super().execute(plan_context, execution_plan)


@executor(name="celery", config_schema=CELERY_CONFIG, requirements=multiple_process_executor_requirements())
def celery_environment_executor(init_context):
    config = init_context.executor_config
    return EnvironmentQueues(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),
    )


# A worker acknowledges a step when it is done, not when it takes it: a worker killed mid-step leaves the
# step to another worker of its queue (the broker gives it again), which fails or finishes it cleanly (an
# apply is applied once: the plan's state says so, plans/state.py). RabbitMQ's consumer_timeout (30 min
# by default) must exceed the longest apply.
WORKER_SETTINGS = {"task_acks_late": True, "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1}


def worker_app(broker: str, backend: str):
    """The Celery app of a worker: the executor's broker and result backend, dagster-celery's task, and
    the acknowledgement of a step when it is done (WORKER_SETTINGS)."""
    app = make_app(CeleryExecutor.for_cli(broker=broker, backend=backend).app_args())
    app.conf.update(WORKER_SETTINGS)
    create_task(app)
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

    aws = build_resources(replace(settings, worker_environments=tuple(environments)))["aws"]
    for environment in environments:
        aws.target(environment, config.policy(environment).aws)


def run_worker(settings: Settings, environments: list[str], concurrency: int, name: str) -> None:
    """Take the steps of ``environments`` (their queues) until stopped; this process is the worker. Its
    pool processes act for those environments only (MANAGER_WORKER_ENVIRONMENTS, AwsResource)."""
    os.environ["MANAGER_WORKER_ENVIRONMENTS"] = ",".join(environments)
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
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    if type(instance.run_storage).__name__.startswith("Sqlite"):
        raise ManagerError(
            f"MANAGER_EXECUTOR=celery: the Dagster instance in {instance.root_directory} keeps runs in SQLite, which "
            "workers on other machines cannot reach; give it PostgreSQL storage (README, Deploying at scale)"
        )
    job = ReconstructableRepository.for_module("manager_pipeline.defs.definitions", "defs").get_reconstructable_job(
        job_name
    )
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
