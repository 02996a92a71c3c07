#!/usr/bin/env bash
# Prepares the database and starts web, Celery worker and Celery beat together;
# Ctrl-C (or SIGTERM) stops all three with everything they started.
#
# Environment: the app's own variables (see README.md), plus
#   RUN_ADDR  where runserver listens (default 127.0.0.1:8000)
#   DEBUG     1 by default here, so runserver serves the static files
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
CELERY=.venv/bin/celery
RUN_ADDR=${RUN_ADDR:-127.0.0.1:8000}
export DEBUG=${DEBUG:-1}

"$PY" manage.py migrate --noinput
# The request limits' counts, when the cache is the database (no Redis broker).
"$PY" manage.py createcachetable
"$PY" manage.py demo_load
case "${DEBUG,,}" in
  1 | true | yes | on) ;;
  # Without DEBUG, whitenoise serves static files from STATIC_ROOT only.
  *) "$PY" manage.py collectstatic --noinput -v0 ;;
esac
banner=$("$PY" manage.py admin_ensure --base-url "http://$RUN_ADDR")
echo "$banner"

# Each process gets its own process group (job control), so stopping a group
# stops the process and its children: runserver's reloaded child, the worker's
# pool. A Ctrl-C reaches this script, which stops them in order.
set -m
pids=()
running() {  # running PID...: whether any of these processes still runs
  local pid
  for pid; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}
groups_running() {  # groups_running PGID...: the same for whole process groups
  local pid
  for pid; do kill -0 -- "-$pid" 2>/dev/null && return 0; done
  return 1
}
stop() {
  trap - INT TERM EXIT
  # The waits below run in this group, not in one that takes the terminal.
  set +m
  local pid
  # Each leader first: the worker stops its pool itself, after the task at hand
  # (warm shutdown). Then whatever a leader left behind, such as runserver's
  # reloaded child; then, if anything still hangs on, SIGKILL.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do running "${pids[@]}" || break; sleep 0.2; done
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 25); do groups_running "${pids[@]}" || return 0; sleep 0.2; done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

"$PY" manage.py runserver "$RUN_ADDR" &
pids+=($!)
"$CELERY" -A cxm worker -l info &
pids+=($!)
"$CELERY" -A cxm beat -l info &
pids+=($!)
# Once the start-up logs have scrolled by, show where to log in again.
(sleep 6 && printf '\n%s\nCtrl-C stops web, worker and beat.\n\n' "$banner") &
pids+=($!)

# Web, worker and beat run until one of them stops; then stop the others.
status=0
while :; do
  wait -n "${pids[@]:0:3}" || status=$?
  for pid in "${pids[@]:0:3}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "A process stopped (pid $pid, status $status); stopping the others." >&2
      exit "$(( status ? status : 1 ))"
    fi
  done
done
