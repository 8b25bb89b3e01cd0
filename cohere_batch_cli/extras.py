"""How to install an optional extra, in words that work wherever cbatch came from.

cbatch is not on PyPI, so ``pip install 'cohere-batch-cli[parquet]'`` finds
nothing for someone who installed it from a clone or a wheel. What always
works is installing the extra's own requirements, which the installed
package's metadata lists (so the hint never drifts from pyproject.toml).
Read only when an extra is missing: an error path, never start-up.
"""

from __future__ import annotations

import shlex


def install_hint(extra: str) -> str:
    """``pip install 'pyarrow>=14' (the [parquet] extra)``: the command that brings ``extra``."""
    import importlib.metadata

    try:
        requires = importlib.metadata.requires("cohere-batch-cli") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return f"pip install '.[{extra}]' from a clone of cbatch"
    wanted = []
    for requirement in requires:
        spec, _, marker = requirement.partition(";")
        if marker.replace(" ", "").replace('"', "'") == f"extra=='{extra}'":
            wanted.append(shlex.quote(spec.strip().replace(" ", "")))
    if not wanted:
        return f"pip install '.[{extra}]' from a clone of cbatch"
    return f"pip install {' '.join(sorted(wanted))} (the [{extra}] extra)"
