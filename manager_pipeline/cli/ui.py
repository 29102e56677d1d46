"""`ui`, `stop`, `worker`, `serve-webhooks`: the long-running processes of a manager, and stopping the local
AWS stand-in."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from manager_pipeline.cli.common import EXIT_FAILED, EXIT_OK, UsageError, load_resources, read_manager_yaml, read_settings
from manager_pipeline.errors import ManagerError
from manager_pipeline.settings import Settings


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def cmd_ui(args: argparse.Namespace) -> int:
    """The Dagster webserver and daemon of this instance and the code server they share, each a process of its
    own (Ctrl-C stops all three; one ending ends the others).

    Dagster's UI has no login and launches applies: it listens on loopback only, unless an authenticating
    proxy fronts it (MANAGER_UI_AUTH=proxy, docs/setup.md); `--read-only` serves a UI that can launch nothing."""
    import shutil
    import subprocess

    from manager_pipeline.defs.code_server import serve_code_location
    from manager_pipeline.defs.instance import open_instance
    from manager_pipeline.settings import UI_ADDRESS_FILE

    settings = read_settings()
    if not _loopback(args.host) and settings.ui_auth != "proxy":
        raise UsageError(
            f"refusing to serve the Dagster UI on {args.host}: it has no login and can start applies; keep "
            "--host 127.0.0.1, or put an authenticating proxy in front (docs/setup.md) and set MANAGER_UI_AUTH=proxy"
        )
    read_manager_yaml(settings)
    # The instance's storage made here, once: the webserver and the daemon starting together on a fresh home
    # would each create (and stamp) its SQLite schedule storage, leaving two alembic heads nothing opens again.
    open_instance(settings).dispose()
    root = settings.config_path.parent
    shown = "localhost" if _loopback(args.host) else args.host
    url = f"http://{'[::1]' if args.host == '::1' else shown}:{args.port}"
    # Every link the manager writes (statuses, comments, the CLI's) follows this UI, unless DAGSTER_WEBSERVER_URL says.
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / UI_ADDRESS_FILE).write_text(url + "\n")
    env = dict(os.environ)
    env.setdefault("DAGSTER_WEBSERVER_URL", url)
    bin_dir = Path(sys.executable).parent

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # a stop while the code loads stops its server too
    # One code server for both (defs/code_server.py says why).
    code_server, workspace_file = serve_code_location(root, env)
    workspace = str(workspace_file)
    processes = [code_server]
    webserver = [str(bin_dir / "dagster-webserver"), "-w", workspace, "-h", args.host, "-p", str(args.port)]
    if args.read_only:
        webserver.append("--read-only")
    commands = [webserver, [str(bin_dir / "dagster-daemon"), "run", "-w", workspace]]
    print(f"Dagster UI on {url} (instance {settings.dagster_home}); Ctrl-C stops it", flush=True)
    processes += [subprocess.Popen(argv, cwd=root, env=env, start_new_session=True) for argv in commands]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        # Any one ending (a crash, a port in use) ends all: half a manager is not left running.
        while all(process.poll() is None for process in processes):
            try:
                processes[-1].wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(workspace_file.parent, ignore_errors=True)
    failed = [process.returncode for process in processes if process.returncode not in (0, -signal.SIGTERM, None)]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from manager_pipeline.aws.standin import LocalAws

    settings = read_settings()
    stopped = LocalAws(settings.home).stop()
    print("local AWS stand-in stopped" if stopped else "no local AWS stand-in was running")
    from manager_pipeline.policy import installed_checkov
    from manager_pipeline.policy.server import stop

    checkov = installed_checkov(settings.tools_dir)
    served = stop(checkov) if checkov else None
    print(f"policy engine server (pid {served}) stopped" if served else "no policy engine server was running")
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    """A Celery worker for the steps of some environments' runs: only those whose credentials it holds."""
    import socket

    settings = read_settings()
    config = read_manager_yaml(settings)
    from kombu.utils.url import maybe_sanitize_url

    from manager_pipeline.defs.celery import check_worker, run_worker

    environments = list(dict.fromkeys(args.environments))
    try:
        check_worker(settings, config, environments)
    except ManagerError as exc:
        raise UsageError(str(exc)) from None
    name = args.name or f"manager-{'-'.join(environments)}-{os.getpid()}"
    print(
        f"worker {name}@{socket.gethostname()}: steps of {', '.join(environments)} from "
        f"{maybe_sanitize_url(settings.celery_broker)}, {args.concurrency} at a time; Ctrl-C stops it",
        flush=True,
    )
    run_worker(settings, environments, args.concurrency, name)
    return EXIT_OK


def cmd_serve_webhooks(args: argparse.Namespace) -> int:
    import logging

    from manager_pipeline.defs.instance import prepare_home
    from manager_pipeline.intake.inbox import Inbox
    from manager_pipeline.intake.receiver import PATH, ConfigWatcher, WebhookApp, serve

    settings = read_settings()
    config = read_manager_yaml(settings)
    secret = settings.github.webhook_secret.get_secret_value() if settings.github.webhook_secret else ""
    # Each source may have its own secret (`webhook_secret_env`), or take OIDC tokens only
    # (`auth: oidc`); one of them is enough to start.
    own_secrets = [s.webhook_secret_env for s in config.sources.values() if s.webhook_secret_env]
    oidc_only = any(s.auth == "oidc" for s in config.sources.values())
    if not secret and not oidc_only and not any(settings.named_secrets.get(name) for name in own_secrets):
        raise UsageError(
            "GITHUB_WEBHOOK_SECRET is not set and no source's `webhook_secret_env` names a set variable "
            "(nor has a source `auth: oidc`); the receiver refuses to start without a secret"
        )
    prepare_home(settings)
    watcher = ConfigWatcher(settings.config_path)
    app = WebhookApp(
        secret,
        watcher,
        Inbox(settings.database_url),
        environ=settings.named_secrets,
        announce=_announcer(settings, watcher),
        permission=_permission(settings),
        pulls=_pulls(settings),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def ready(host: str, port: int) -> None:
        print(f"receiving GitHub deliveries on http://{host}:{port}{PATH} (health: /healthz)", flush=True)
        print(f"OIDC tokens: issuer {app.oidc.issuer}, audience {app.oidc.audience}", flush=True)

    serve(app, args.host, args.port, ready, deadline_s=args.request_timeout, max_connections=args.max_connections)
    return EXIT_OK


def _permission(settings: Settings):
    """With GitHub credentials, the receiver asks GitHub who may press a check run's "Plan again"."""
    github = load_resources(settings)["github"]
    if not github.configured:
        return None
    return lambda repo, login: github.client(True).permission(repo, login)


def _pulls(settings: Settings):
    """With GitHub credentials, an OIDC pull request delivery's head, fork and author are GitHub's word;
    without, such a delivery waits for a maintainer's `/plan`."""
    github = load_resources(settings)["github"]
    if not github.configured:
        return None
    return lambda repo, number: github.client(True).pull_request(repo, number)


def _announcer(settings: Settings, watcher):
    """With GitHub credentials, the receiver posts a `queued` status the moment a delivery is stored."""
    from manager_pipeline.intake.announce import Announcer
    from manager_pipeline.intake.dispatch import pr_checker

    feedback = load_resources(settings)["feedback"]
    if not feedback.github.configured:
        return None
    outbox = feedback.outbox()
    announcer = Announcer(
        config=watcher.current,
        touches=pr_checker(lambda repo, pr: feedback.github.client(True).pull_files(repo, pr)),
        enqueue=outbox.add,
        send=lambda: feedback.deliver(quick=True),
        runs_url=f"{feedback.webserver_url}/runs",
        check_runs=feedback.github.is_app,
    )
    return announcer.announce


def add_parsers(subparsers) -> None:
    ui = subparsers.add_parser("ui", help="open the Dagster UI (and daemon) on this instance")
    ui.add_argument("--host", default="127.0.0.1", help="listen here (loopback unless MANAGER_UI_AUTH=proxy)")
    ui.add_argument("--port", type=int, default=3000, help="listen on this port; the links the manager writes follow")
    ui.add_argument("--read-only", action="store_true", help="a UI that can look at everything and launch nothing")
    ui.set_defaults(func=cmd_ui)
    subparsers.add_parser("stop", help="stop the local AWS stand-in").set_defaults(func=cmd_stop)
    worker = subparsers.add_parser("worker", help="take the steps of runs on Celery (MANAGER_EXECUTOR=celery)")
    worker.add_argument(
        "--environments", nargs="+", required=True, metavar="ENV", help="whose steps it takes (with their credentials)"
    )
    worker.add_argument("--concurrency", type=int, default=os.cpu_count() or 1, help="steps at a time (default: cores)")
    worker.add_argument("--name", help="the worker's name in the run's events (default: manager-ENVS-PID)")
    worker.set_defaults(func=cmd_worker)
    webhooks = subparsers.add_parser("serve-webhooks", help="receive GitHub webhook deliveries into the inbox")
    webhooks.add_argument("--host", default="127.0.0.1")
    webhooks.add_argument("--port", type=int, default=8088)
    webhooks.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds a sender gets for headers, and for the body"
    )
    webhooks.add_argument("--max-connections", type=int, default=1000, help="past it, new connections get 503")
    webhooks.set_defaults(func=cmd_serve_webhooks)
