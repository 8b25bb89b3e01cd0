"""``import httpx`` without loading httpx's own command-line tool.

httpx's ``__init__`` runs ``from ._main import main`` whenever click is
importable, and uvicorn (the sandbox extra) installs click beside cbatch: that
pulls click, pygments and five rich modules into every command that talks to
the API, about 100 ms and 5 MiB each time (docs/performance.md, P2). A None
entry in ``sys.modules`` makes that one import fail, which httpx handles by
design (it is how it behaves without its ``[cli]`` extra). cbatch never uses
httpx's command line.
"""

import sys

if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx

__all__ = ["httpx"]
