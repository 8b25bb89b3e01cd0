"""cbatch's local state: what this machine remembers between runs, in one SQLite file.

- :mod:`.store`: the store itself (where it lives, one connection per
  process, WAL, migrations on open) and what it records: batch lineage,
  the local file a batch was created from, retry attempts in flight.
- :mod:`.migrations`: the schema, one numbered script per version.
- :mod:`.spill`: scratch databases for work too large to hold in memory
  (the ids of millions of records), deleted when the work is done.

The API stays the truth: the store caches what batch names already say (see
:mod:`cohere_batch_cli.naming`), so an empty store is rebuilt from the API,
and a run on another machine works without it. sqlite3 is imported only by
commands that use the store, never by ``cbatch --help``.
"""
