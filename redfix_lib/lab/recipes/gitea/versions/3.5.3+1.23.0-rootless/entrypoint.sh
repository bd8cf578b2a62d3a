#!/bin/sh
mkdir -p /data/gitea /www/api/healthz
if [ ! -f /data/gitea/installed ]; then echo "gitea 1.23.0: fresh install"; date > /data/gitea/installed; fi
echo '{"status":"pass"}' > /www/api/healthz/index.html
echo "gitea 1.23.0: listening on :3000"
exec httpd -f -p 3000 -h /www
