#!/bin/sh
# caddy stand-in: on-demand TLS. Before serving a domain it asks the app (ASK_URL) whether a
# certificate may be issued; until the ask succeeds nothing listens on :443 (clients get 000).
trap 'exit 0' TERM
mkdir -p /www/xrpc/_health
while :; do
  addr=$(nslookup "$ASK_HOST" 2>/dev/null | awk '/^Address/ {a=$2} END {print a}')
  out=$(timeout 3 wget -q -O - "$ASK_URL?domain=$DOMAIN" 2>&1)
  if [ "$out" = "ok" ]; then
    echo "caddy: certificate obtained for $DOMAIN (ask $ASK_URL -> ${addr} ok)"
    break
  fi
  echo "caddy: on-demand TLS ask $ASK_URL for $DOMAIN failed: dial tcp ${addr:-?}:3000: ${out:-i/o timeout}"
  sleep 2
done
# serve the health endpoint from the app
while :; do
  timeout 3 wget -q -O /www/xrpc/_health/index.html "http://$ASK_HOST:3000/xrpc/_health/" 2>/dev/null
  [ -s /www/xrpc/_health/index.html ] && break
  sleep 1
done
exec httpd -f -p 443 -h /www
