"""A local stand-in for Cohere's batch and dataset API, in the way stripe-mock stands in for Stripe.

Tests, the demo and users' CI point cbatch at it (``CO_API_URL``) and need no network.
The package is behind the ``[sandbox]`` extra, so this module imports nothing: start it
with :class:`cohere_batch_cli.sandbox.server.SandboxServer`, ``python -m
cohere_batch_cli.sandbox`` or ``cbatch sandbox serve``. See docs/sandbox.md.
"""
