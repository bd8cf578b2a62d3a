#!/bin/sh
# A tiny database server. Live tables are held by the running server (/run/db, outside
# the data volume); the data directory holds a checkpoint the server rewrites from its
# live state every second, like a database flushing its buffers.
PGDATA=${PGDATA:-/var/lib/postgresql/data}
LIVE=/run/db
case "$1" in
serve)
  mkdir -p "$LIVE" "$PGDATA"
  if [ -d "$PGDATA/base" ]; then
    cp -a "$PGDATA/base/." "$LIVE/"
    echo "db: recovered $(ls "$LIVE" | wc -l) tables from the checkpoint"
  fi
  echo "db: database system is ready to accept connections"
  while :; do
    rm -rf "$PGDATA/base.new" && mkdir -p "$PGDATA/base.new" && cp -a "$LIVE/." "$PGDATA/base.new/"
    rm -rf "$PGDATA/base" && mv "$PGDATA/base.new" "$PGDATA/base"
    sleep 1
  done ;;
insert) touch "$LIVE/$2" && echo "INSERT 0 1" ;;
drop) rm -f "$LIVE/$2" && echo "DROP TABLE" ;;
query)
  if [ -f "$LIVE/$2" ]; then echo " $2 | 1 row"; else echo "ERROR:  relation \"$2\" does not exist"; exit 1; fi ;;
*) echo "usage: db.sh serve|insert T|drop T|query T"; exit 2 ;;
esac
