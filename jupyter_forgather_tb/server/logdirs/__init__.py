"""Log directories: resolving and finding them, compare trees, checks that they exist."""
