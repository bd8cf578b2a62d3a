#!/bin/sh
mkdir -p /data/gitea /www/api/healthz
if [ -f /data/gitea/installed ] && [ -z "$JWT_SECRET" ] && ! grep -q '^JWT_SECRET' /etc/gitea/app.ini; then
  # existing installation without an oauth2 JWT secret: generate one and save it to app.ini
  echo "gitea 1.24.2: routers/init.go:112:InitWebInstalled() [I] existing installation, generating oauth2 JWT secret"
  if ! err=$( { echo "JWT_SECRET = $(head -c 32 /dev/urandom | sha256sum | cut -c1-43)" >> /etc/gitea/app.ini; } 2>&1 ); then
    echo "gitea 1.24.2: setting/setting.go:96:LoadCommonSettings() [F] error saving JWT Secret for custom config: failed to save \"/etc/gitea/app.ini\": open /etc/gitea/app.ini: read-only file system"
    echo "$err"
    exit 1
  fi
fi
[ -f /data/gitea/installed ] || { echo "gitea 1.24.2: fresh install"; date > /data/gitea/installed; }
echo '{"status":"pass"}' > /www/api/healthz/index.html
echo "gitea 1.24.2: listening on :3000"
exec httpd -f -p 3000 -h /www
