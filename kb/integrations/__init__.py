"""Clients of kb's HTTP API for agent frameworks; each needs only the framework and a running kb."""
