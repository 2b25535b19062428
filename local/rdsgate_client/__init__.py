"""The HTTP client of the rdsgate API (``api``): what the command line, the tunnel and the MCP server call it with.

Below ``rdsgate_cli`` and ``rdsgate_tunnel``, which both use it; it imports neither.
"""
