"""cbatch as a Python library: the code behind ``import cohere_batch_cli as cb``.

The public names are attributes of the package itself (``cb.Client``,
``cb.Run``, ``cb.CbatchError``...), loaded on first use; this subpackage holds
what the library adds to the engine under the command line: the client built
from the CLI's settings (:mod:`.client`), a run and what is done with it
(:mod:`.run`), the reporter that logs instead of printing (:mod:`.reporting`),
its typed events (:mod:`.events`), and records streamed from the results
pipeline (:mod:`.records`). Everything else is the same tasks the commands run.
"""
