"""Work that spans several API calls, shared by every command that needs it.

Each task takes a client, its options and a :class:`~.reporting.Reporter`
(the output object, in a command), and knows nothing of typer: a command,
``cbatch demo``, and the retry rounds and job parts to come all run the same
code. Tasks may name the cbatch command to run next in a hint; the API layer
below them never does.

- :mod:`.datasets`: check a file, upload it, wait for validation
- :mod:`.batches`: create a batch without doubling it, cancel batches
- :mod:`.watching`: follow batches to the end and return the exit code
- :mod:`.fetching`: download and decode a finished batch's results (merged across retries)
- :mod:`.lineage`: a batch's chain of attempts, from batch names and the state store
- :mod:`.sources`: where a retry reads the requests it sends again
- :mod:`.retrying`: one retry in steps written intent first, and rounds of them
"""
