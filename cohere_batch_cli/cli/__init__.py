"""The typer commands: thin wrappers that parse options, call the API layer and print."""
