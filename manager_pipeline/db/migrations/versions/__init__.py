"""One revision a file, in order of ``down_revision``."""
