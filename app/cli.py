"""The `polytag` command: serve | worker | migrate | create-user | demo."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from app.config import ConfigurationError, settings

DEFAULT_QUEUES = "default,train"


def _is_embedded_broker() -> bool:
    return settings.broker_url.startswith("sqla+")


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Apply all database migrations."""
    from app.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade()
    print(f"database is at the latest schema ({_redacted(settings.database_url)})")
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def _start_worker_child(queues: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app.cli", "worker", "-Q", queues, "--pool", "solo"]
    return subprocess.Popen(command)


def _stop_child(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)  # Celery's warm shutdown: finish or requeue the job
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, start a worker child in embedded mode, and serve the web app until Ctrl-C."""
    import uvicorn

    settings.check_production()
    if not args.no_migrate:
        cmd_migrate(args)
    start_worker = args.worker if args.worker is not None else _is_embedded_broker()
    child = _start_worker_child(args.queues) if start_worker else None
    # uvicorn shuts down on SIGTERM, then re-raises it to the handler it found: leave through
    # SystemExit rather than die of the signal, so `finally` stops the worker child (and
    # `docker stop` sees exit code 0).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        print(f"Polytag is running at http://{args.host}:{args.port}  (Ctrl-C stops it)")
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            log_level="info",
            proxy_headers=settings.env == "production",
            timeout_graceful_shutdown=10,
        )
    finally:
        if child is not None:
            _stop_child(child)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker on the given queues."""
    from worker.celery_app import celery_app

    argv = [
        "worker",
        "-Q",
        args.queues,
        "--loglevel",
        args.loglevel,
        "--concurrency",
        str(args.concurrency),
        "-n",
        f"{args.name}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if args.pool:
        argv += ["--pool", args.pool]
    celery_app.worker_main(argv)
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create an account from the shell."""
    from app.db import new_session
    from app.errors import DomainError
    from app.services import users as user_service

    password = args.password or os.environ.get("POLYTAG_NEW_USER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("error: give --password (no terminal to ask on)", file=sys.stderr)
            return 2
        password = getpass.getpass("Password: ")
    with new_session() as session:
        try:
            user = user_service.create(
                session=session, email=args.email, password=password, is_admin=args.admin
            )
        except DomainError as error:
            print(f"error: {error.message}", file=sys.stderr)
            return 1
    role = "admin" if user.is_admin else "user"
    print(f"created {role} {user.email}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Create the digits demo project."""
    from app.services.demo import create_demo_project

    project = create_demo_project(images=args.images, seed=args.seed, progress=True)
    print(f"created demo project {project.id} '{project.name}'")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `polytag` command."""
    parser = argparse.ArgumentParser(prog="polytag", description="Polytag multi-label platform")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (and a worker in embedded mode)")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--queues", default=DEFAULT_QUEUES)
    serve.add_argument("--no-migrate", action="store_true", help="skip `migrate` at start")
    group = serve.add_mutually_exclusive_group()
    group.add_argument("--worker", dest="worker", action="store_true", default=None,
                       help="start a worker child process (default: in embedded mode only)")
    group.add_argument("--no-worker", dest="worker", action="store_false")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("-Q", "--queues", default=DEFAULT_QUEUES)
    worker.add_argument("--concurrency", type=int, default=settings.worker_concurrency)
    worker.add_argument("--pool", default=None, help="Celery pool (solo, prefork, threads)")
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--name", default="polytag")
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    create_user = sub.add_parser("create-user", help="create an account")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--password", default=None)
    create_user.add_argument("--admin", action="store_true")
    create_user.set_defaults(func=cmd_create_user)

    demo = sub.add_parser("demo", help="create the handwritten-digits demo project")
    demo.add_argument("--images", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigurationError as error:
        # A settings problem is the operator's to fix: one line naming the variable, no traceback.
        print(f"polytag: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
