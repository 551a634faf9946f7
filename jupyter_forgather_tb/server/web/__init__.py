"""The web layer: REST handlers, the /tb/ proxy and its forwarding rules, job clients, previews."""
