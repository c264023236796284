"""Where the servers are and who answers there: URLs (and masking their passwords), host
resolution, the socket probe, and reading a server's greeting for connect-error hints."""
