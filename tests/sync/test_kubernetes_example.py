"""examples/kubernetes: the CronJob renders to n pods that split the shops with no overlap."""

from __future__ import annotations

import subprocess
from pathlib import Path

import typer
import yaml

from nfdoctor.cli.sync_cmd import sync
from nfdoctor.sync.shard import parse_shard

EXAMPLE = Path(__file__).parents[2] / "examples" / "kubernetes" / "nfdoctor-sync-cronjob.yaml"


def rendered_args(index: int) -> list[str]:
    """The nfdoctor arguments pod ``index`` runs, as its shell expands them."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    container = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    script = container["args"][0].replace("exec nfdoctor ", "printf '%s\\n' ", 1)
    out = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"JOB_COMPLETION_INDEX": str(index), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def test_the_pods_take_every_shard_once() -> None:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert document["kind"] == "CronJob"
    job = document["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    pods = job["completions"]
    assert job["parallelism"] == pods
    shards = []
    for index in range(pods):
        args = rendered_args(index)
        assert args[0] == "sync"
        shard = parse_shard(args[args.index("--shard") + 1])
        assert shard.count == pods
        shards.append(shard.index)
    assert sorted(shards) == list(range(1, pods + 1))


def test_the_command_line_is_one_nfdoctor_accepts() -> None:
    app = typer.Typer()
    app.command()(sync)
    command = typer.main.get_command(app)
    args = rendered_args(0)[1:]
    # Parsing only (no run): every option exists and takes the value given.
    context = command.make_context("nfdoctor sync", list(args))
    assert context.params["shard"] == "1/4"
    assert context.params["platform"] == "all"
