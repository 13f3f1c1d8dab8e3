"""The CPU engine benchmark (issue 6); the same as ``ese bench``.

    .venv/bin/python benchmarks/bench_engine.py [--quick] [--threads N] [--json runs/bench/engine.json]
        [--model models/paper/paper-b32-d11-w12a16.qnpz] [--extra runs/paper/pruned-rows16.pt]
    .venv/bin/python benchmarks/bench_engine.py --markdown runs/bench/engine.json [--into docs/performance.md]

``--markdown`` prints the tables of a saved run; with ``--into`` it replaces the text between the
``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers of that file instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--markdown"]:
        from ese.runtime.bench import markdown
        with open(args[1], encoding="utf-8") as fh:
            text = markdown(json.load(fh))
        if args[2:3] != ["--into"]:
            print(text)
            return
        doc = Path(args[3])
        head, _, rest = doc.read_text(encoding="utf-8").partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")
        return
    from ese.cli import main as ese_main
    sys.argv = ["ese", "bench", *args]
    ese_main()


if __name__ == "__main__":
    main()
