"""The server document: one codec for every reader and writer of it.

The REST API (create, PATCH, detail, list), seed_servers and export_servers (registry
files), import_mcp_config (client configs) and the console's import all go through
`parse` and the `render` functions, so the seed designs' bodies mean the same everywhere.
"""

from servers.document.parse import UNSET, DocumentError, ServerInput, parse
from servers.document.render import (
    client_entry_document,
    detail,
    list_item,
    registry_file,
    transport,
)

__all__ = [
    "UNSET",
    "DocumentError",
    "ServerInput",
    "client_entry_document",
    "detail",
    "list_item",
    "parse",
    "registry_file",
    "transport",
]
