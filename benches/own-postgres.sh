# Sourced by the bench scripts that run the release router on a PostgreSQL cluster of their own
# (the system's binaries, through DATABASE_URL). Before sourcing, set NAME (for the work folder),
# PGPORT, PORT and TOKEN; afterwards BIN, PGBIN, AS_PG, WORK and DATABASE_URL are set, the
# cluster runs, and start_router, ready and psql_ are defined. On exit the router and the
# cluster stop and the work folder goes.
BIN=$PWD/target/release/switchyard
PGBIN=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | tail -1)
WORK=$(mktemp -d "/tmp/switchyard-$NAME.XXXXXX")
chmod 755 "$WORK"
# PostgreSQL refuses to run as root: as root, the cluster runs as `postgres`.
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); chown postgres "$WORK"; fi
export SWITCHYARD_TARGET_ALLOW_CIDRS=127.0.0.0/8 SWITCHYARD_ADMIN_TOKEN=$TOKEN SWITCHYARD_LOG=warn
"${AS_PG[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
"${AS_PG[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres switchyard
export DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/switchyard

ROUTER=
start_router() { "$BIN" serve --listen "127.0.0.1:$PORT" >>"$WORK/router.log" 2>&1 & ROUTER=$!; }
ready() { for _ in $(seq 1 600); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done; }
psql_() { psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d switchyard -v ON_ERROR_STOP=1 -Atq "$@"; }
cleanup() {
  [ -n "$ROUTER" ] && kill "$ROUTER" 2>/dev/null && sleep 2
  "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
