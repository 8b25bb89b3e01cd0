"""``python -m cohere_batch_cli``: the same entry point as the ``cbatch`` script."""

from cohere_batch_cli.main import main

if __name__ == "__main__":
    main()
