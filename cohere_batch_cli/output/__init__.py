"""Everything cbatch prints: data to stdout in the mode asked for, the rest to stderr.

Nothing here calls the API, and nothing in this package file imports rich:
the modules that need it import it when they are used.
"""
