"""Runnable examples of poolwarden (see README.md here)."""
