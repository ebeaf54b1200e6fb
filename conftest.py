"""Suite-wide fixtures, registered once here so every test sees the same ones in any order."""

pytest_plugins = ["tests.api_fixtures", "tests.mcp_peers", "tests.production"]
