"""Counting a request's tokens the way the API's usage counts them, with the model's tokenizer.

- :mod:`.rule`: which text of a chat or embed request counts (text parts, not images,
  not tools), how an embed unit is truncated, and the bound a line's bytes put on it;
  standard library only.
- :mod:`.tokenizer`: a model's tokenizer file loaded with Hugging Face ``tokenizers``
  (the ``[estimate]`` extra), counting many texts at once.
- :mod:`.source`: where that file comes from: ``--tokenizer FILE``, the user cache, or
  the model's public ``tokenizer_url``, fetched without the API key.

This file imports nothing, so that ``cbatch --help`` never pays for any of it.
"""
