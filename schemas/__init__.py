"""Contracts shared by intake and workers: messages, facts, standards, settings, errors."""
