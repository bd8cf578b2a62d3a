#!/bin/sh
# render app.ini into the writable data volume; the read-only config is only a template
mkdir -p /data/gitea/conf /www/api/healthz
[ -f /data/gitea/conf/app.ini ] || cp /etc/gitea/app.ini /data/gitea/conf/app.ini
if [ -f /data/gitea/installed ] && [ -z "$JWT_SECRET" ] && ! grep -q '^JWT_SECRET' /data/gitea/conf/app.ini; then
  echo "gitea 1.24.2: existing installation, generating oauth2 JWT secret into /data/gitea/conf/app.ini"
  echo "JWT_SECRET = $(head -c 32 /dev/urandom | sha256sum | cut -c1-43)" >> /data/gitea/conf/app.ini || exit 1
fi
[ -f /data/gitea/installed ] || { echo "gitea 1.24.2: fresh install"; date > /data/gitea/installed; }
echo '{"status":"pass"}' > /www/api/healthz/index.html
echo "gitea 1.24.2: listening on :3000"
exec httpd -f -p 3000 -h /www
