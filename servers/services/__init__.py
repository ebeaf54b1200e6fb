"""Services of the servers app: the only entry points other apps, views and tasks call."""
