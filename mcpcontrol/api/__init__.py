"""Shared plumbing of the REST API v1: error bodies, pagination, scopes, throttles, auth."""
