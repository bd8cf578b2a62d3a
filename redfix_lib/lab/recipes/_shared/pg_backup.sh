#!/bin/sh
# pg_dump / psql stand-in: dump the live tables to backup.sql, or replay backup.sql into
# the running server.
PGDATA=${PGDATA:-/var/lib/postgresql/data}
LIVE=/run/db
case "$1" in
backup)
  ls "$LIVE" > "$PGDATA/backup.sql.tmp" && mv "$PGDATA/backup.sql.tmp" "$PGDATA/backup.sql"
  echo "pg_dump: dumped $(wc -l < "$PGDATA/backup.sql") tables to $PGDATA/backup.sql" ;;
restore)
  [ -f "$PGDATA/backup.sql" ] || { echo "psql: $PGDATA/backup.sql: No such file or directory"; exit 1; }
  rm -rf "$LIVE" && mkdir -p "$LIVE"
  while read -r t; do [ -n "$t" ] && touch "$LIVE/$t"; done < "$PGDATA/backup.sql"
  echo "psql: replayed $(wc -l < "$PGDATA/backup.sql") tables from backup.sql" ;;
*) echo "usage: pg_backup.sh backup|restore"; exit 2 ;;
esac
