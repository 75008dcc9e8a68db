#!/bin/sh
# keepalived's health check of a Vigie proxy: exit 0 when the proxy on HOST:PORT answers its own
# PAC file (served by the proxy process itself, so it proves the event loop is alive without any
# origin or DNS), non-zero otherwise. Install as /usr/local/lib/vigie/vigie-check.sh, owned by
# root, mode 0755 (keepalived's script security refuses a script others could rewrite).
host="${1:-127.0.0.1}"
port="${2:-3128}"
exec curl --silent --fail --max-time 1.5 --output /dev/null "http://${host}:${port}/proxy.pac"
