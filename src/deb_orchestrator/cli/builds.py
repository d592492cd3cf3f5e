"""Build and task commands: build, watch-task, list-tasks, taskinfo, cancel, resubmit, download-logs…"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deb_orchestrator.cli.common import Subparsers, add_command, add_query, arg, client, emit, say, when
from deb_orchestrator.cli.plugins import parse as parse_plugins
from deb_orchestrator.cli.plugins import plugin_args
from deb_orchestrator.client import HubClient
from deb_orchestrator.states import BuildState, TaskState
from deb_orchestrator.wire import TaskDetail

TASK_COLUMNS = [("id", "ID"), ("parent_id", "Parent"), ("method", "Method"), ("arch", "Arch"), ("state", "State"),
                ("host", "Host"), ("attempts", "Attempts"), ("created", "Created"), ("error", "Error")]
BUILD_COLUMNS = [("id", "ID"), ("ident", "Build"), ("state", "State"), ("target", "Target"), ("owner", "Owner"),
                 ("task_id", "Task"), ("created", "Created")]


def register(sub: Subparsers) -> None:
    add_command(sub, "build", cmd_build, "submit a .dsc (URL or local file) to a target", "target",
                arg("source", help="http(s) URL of a .dsc, or a local .dsc (uploaded with its files)"),
                arg("--wait", action="store_true", help="follow the task until it finishes"),
                arg("--arch", action="append", dest="arches", help="build only these arches (repeat)"),
                arg("--priority", type=int, default=20, help="lower runs first (default 20)"),
                *plugin_args("a deb-mock plugin the target lets requests add"))
    add_command(sub, "watch-task", cmd_watch, "follow a task until it finishes", arg("task", type=int))
    add_query(sub, "list-tasks", lambda hub, a: hub.tasks(state=a.state, limit=a.limit), "list tasks, newest first",
              arg("--state", help=", ".join(TaskState)), arg("--limit", type=int, default=50), columns=TASK_COLUMNS)
    add_command(sub, "taskinfo", cmd_taskinfo, "show a task, its subtasks, result and log tail", arg("task", type=int))
    add_query(sub, "list-builds", lambda hub, a: hub.builds(state=a.state, limit=a.limit), "list builds, newest first",
              arg("--state", help=", ".join(BuildState)), arg("--limit", type=int, default=50), columns=BUILD_COLUMNS)
    add_command(sub, "buildinfo", cmd_buildinfo, "show a build (SOURCE_VERSION or ID)", "build")
    add_command(sub, "cancel", cmd_cancel, "cancel a task (ID) or a build (SOURCE_VERSION)", "ref")
    add_command(sub, "resubmit", cmd_resubmit, "build a failed, canceled or dep-waiting build again",
                arg("build", help="SOURCE_VERSION or build ID"), arg("--wait", action="store_true"))
    add_command(sub, "download-logs", cmd_download_logs, "download the logs (and result.json) of a build's tasks",
                arg("build", help="SOURCE_VERSION or build ID"),
                arg("--dir", type=Path, default=Path("."), help="where to put them (default: .)"))


def _watch(hub: HubClient, task_id: int, args: argparse.Namespace) -> int:
    def changed(task: TaskDetail) -> None:
        if args.json:
            return
        kids = ", ".join(f"{c['method']} {c['arch']} {c['id']}: {c['state']}" for c in task.get("children", []))
        say(f"{time.strftime('%H:%M:%S')} task {task['id']} {task['state']}" + (f" ({kids})" if kids else ""))

    task = hub.wait_task(task_id, on_change=changed)
    build = hub.build(task["build_id"]) if task.get("build_id") else None
    if args.json:
        emit(args, {"task": task, "build": build})
    else:
        say(f"task {task_id} {task['state']}" + (f"; build {build['ident']} {build['state']}" if build else ""))
        for c in task.get("children", []):
            if c.get("error"):
                say(f"  {c['method']} {c['arch']} (task {c['id']}): {c['error']}")
    return 0 if task["state"] == TaskState.CLOSED else 1


def cmd_build(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.submit(args.target, args.source, arches=args.arches, priority=args.priority,
                         plugins=parse_plugins(args.plugin, args.plugin_option))
        if not args.json or not args.wait:
            if args.json:
                emit(args, out)
            else:
                say(out["message"])
                print(f"build {out['build']['ident']} id {out['build']['id']} task {out['task']['id']}")
        if args.wait:
            return _watch(hub, out["task"]["id"], args)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    with client(args) as hub:
        return _watch(hub, args.task, args)


def cmd_taskinfo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        task = hub.task(args.task)
        if args.json:
            emit(args, task)
            return 0
        fields = {k: task.get(k) for k in ("id", "method", "arch", "state", "host", "attempts", "owner", "error")}
        fields.update(created=when(task["created"]), started=when(task["started"]),
                      completed=when(task["completed"]), build=task.get("build_id"))
        if task.get("missing"):
            fields["missing"] = "; ".join(m["relation"] for m in task["missing"])
        emit(args, fields)
        if task.get("children"):
            emit(args, task["children"], TASK_COLUMNS, title="subtasks")
        if task.get("files"):
            emit(args, task["files"], [("name", "File"), ("kind", "Kind"), ("size", "Size"), ("sha256", "SHA-256")])
        if task.get("log_tail"):
            print("--- log tail ---")
            print("\n".join(task["log_tail"].splitlines()[-30:]))
    return 0


def cmd_buildinfo(args: argparse.Namespace) -> int:
    with client(args) as hub:
        b = hub.build(args.build)
        if args.json:
            emit(args, b)
            return 0
        emit(args, {k: b.get(k) for k in ("id", "ident", "state", "target", "owner", "requested_by", "task_id",
                                          "created", "completed")})
        emit(args, b["tasks"], TASK_COLUMNS, title="tasks")
        if b["packages"]:
            emit(args, b["packages"], [("name", "Package"), ("version", "Version"), ("arch", "Arch")],
                 title="packages")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.cancel_task(int(args.ref)) if args.ref.isdigit() else hub.cancel_build(args.ref)
        emit(args, out) if args.json else say(f"canceled tasks {out['canceled_tasks']}")
    return 0


def cmd_resubmit(args: argparse.Namespace) -> int:
    with client(args) as hub:
        out = hub.resubmit(args.build)
        if not args.wait or args.json:
            emit(args, out) if args.json else print(f"build {out['build']['ident']} task {out['task']['id']}")
        if args.wait:
            return _watch(hub, out["task"]["id"], args)
    return 0


def cmd_download_logs(args: argparse.Namespace) -> int:
    with client(args) as hub:
        b = hub.build(args.build)
        got = []
        for f in b["files"]:
            if f["kind"] not in ("log", "result", "buildinfo", "changes") or f["task_id"] is None:
                continue
            dest_dir = args.dir / f"task-{f['task_id']}"
            dest_dir.mkdir(parents=True, exist_ok=True)
            got.append(str(hub.download(f"/tasks/{f['task_id']}/files/{f['name']}", dest_dir / f["name"])))
        if not got:
            say(f"build {b['ident']} has no logs yet (state {b['state']})")
            return 1
        emit(args, got) if args.json else print("\n".join(got))
    return 0
