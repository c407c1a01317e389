"""`python -m trainer.torchrun ARGS` is `python -m torch.distributed.run ARGS` (torchrun) plus one fix.

torch 1.13's launcher (Debian's python3-torch) parses `--redirects`/`--tee` by iterating its `Std`
flag enum, and since Python 3.11 iteration skips the zero member `Std.NONE`, so the default `0`
parses to None and torchrun crashes before starting a worker. Newer torch parses it correctly; the
patch below only replaces a None result, so there it changes nothing.
"""
from __future__ import annotations

from torch.distributed.elastic.multiprocessing import Std

_parse = Std.from_str


def _from_str(vm: str):
    parsed = _parse(vm)
    if parsed is None:
        return Std.NONE
    if isinstance(parsed, dict):
        return {rank: Std.NONE if std is None else std for rank, std in parsed.items()}
    return parsed


Std.from_str = _from_str  # type: ignore[method-assign]

if __name__ == "__main__":
    from torch.distributed.run import main

    main()
