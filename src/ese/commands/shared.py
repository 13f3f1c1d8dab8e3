"""What the ``ese`` command modules share: the two consoles and the common option types.

``cli.py`` and every module in ``ese/commands/`` import these from here, so a command module
never imports ``cli.py`` (which imports the command modules to register them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ese.config import Config

console = Console(log_path=False)  # log lines for people: no source-file locations
err_console = Console(stderr=True, soft_wrap=True, log_path=False)  # never break a path across lines

PresetOpt = Annotated[str, typer.Option("--preset", help="Configuration preset: default, paper or tiny.")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML file overriding the preset.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: section.key=value.")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Also write the figures to this JSON file.")]
CorpusOpt = Annotated[Path, typer.Option("--corpus", help="Corpus root: TIMIT layout (real or synthetic), LibriSpeech layout or a manifest directory (docs/ctc.md).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache-dir", help="Feature cache directory (default: none, "
                                                                    "features are recomputed).")]
CacheBesideOutOpt = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Feature cache directory (default: features/ next to --out).")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", help="Torch threads for training (overrides train.threads; 0 = chosen from "
                      "the machine's load: the cores other processes leave free; a resumed run "
                      "keeps its count). docs/threads.md.")]


def config_from(preset: str, config: Optional[Path], overrides: Optional[list[str]]) -> Config:
    """The configuration of a command: preset, then the TOML file, then ``--set`` overrides."""
    return Config.load(config, preset=preset, overrides=overrides or [])


def threads_override(threads: Optional[int]) -> list[str]:
    """``--threads N`` as a ``--set`` override (none when the flag is absent)."""
    return [] if threads is None else [f"train.threads={threads}"]


BackendOpt = Annotated[str, typer.Option(
    "--backend", help="local (this machine's processes) or ray (one Ray task per point; "
                      "pip install -e '.[distributed]').")]
RayAddressOpt = Annotated[str, typer.Option(
    "--ray-address", help="With --backend ray: empty = start a local Ray, 'auto' = join the running "
                          "cluster, or HOST:PORT of a cluster's head.")]
