"""A small typed client for Cohere's batch and dataset endpoints.

It knows nothing of terminals: no typer or rich imports below this package,
so it can be used as a library. Import what you need from the submodules
(``client`` for the calls, ``models``, ``errors``, ``retry``; ``transport`` is
the HTTP layer under ``client``); this file imports nothing, to keep start-up
cheap.
"""
