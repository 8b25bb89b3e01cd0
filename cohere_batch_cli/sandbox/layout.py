"""The files in one dataset's folder of the sandbox's data directory.

Validation writes them and output writing reads them, so their names live here,
below both, rather than in either.
"""

UPLOAD_FILE = "upload.jsonl"
"""The file as uploaded."""
ROWS_FILE = "data.jsonl"
"""The parsed records, one a line, in input order."""
OFFSETS_FILE = "offsets.bin"
"""The byte offset of each record in ROWS_FILE, for reading record N without a scan."""
FACTS_FILE = "facts.jsonl"
"""What each record's outcome is decided from (token counts, request fields)."""
