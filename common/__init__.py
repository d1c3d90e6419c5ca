"""Small pieces shared by every config-bisect package (errors, atomic file writes)."""
