# Sourced by the bench scripts: `start_sim PORT LOG SIM-ARGS…` starts `$bin sim` on PORT in the
# background (its output to LOG), sets sim_pid, and waits until it answers (up to 60 s). The
# caller's EXIT trap kills "$sim_pid".
start_sim() {
  local port="$1" log="$2"
  shift 2
  "$bin" sim --port "$port" "$@" >"$log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/_sim/state" >/dev/null && return 0
    kill -0 "$sim_pid" 2>/dev/null || { echo "the simulator exited; see $log" >&2; return 1; }
    sleep 0.2
  done
  echo "the simulator did not answer on port $port within 60 s; see $log" >&2
  return 1
}
