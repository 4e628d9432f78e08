"""Report rendering: result dicts in, HTML and figures out (no file writing, no service state)."""
