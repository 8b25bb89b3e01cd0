"""The scope of a base URL and a profile: what local records keep apart.

Ids listed on a sandbox must never be offered for the real service, and what
one profile's service said is not another's. So what cbatch keeps on this
machine of what a service said (the ids of the last listing, for shell
completion in ``cli/_completion.py``; the models a service lists) is kept per
*scope*: one base URL and one profile, spelt one way here.
"""

from __future__ import annotations


def scope_of(base_url: str, profile: str) -> str:
    """The one scope of a base URL and a profile, as local records write it."""
    return f"{base_url.rstrip('/')} {profile}"
