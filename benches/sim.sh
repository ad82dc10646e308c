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

# `write_query FILE NAME WHERE [GUARD-LINES]`: a query over the simulator's "All users" report with
# the SQL `where` given and max_members unbounded (GUARD-LINES go under [guard]).
write_query() {
  cat >"$1" <<TOML
name = "$2"
[report]
path = "/shared/Example University/Reports/Password Resets/All users"
limit = 1000
[cohort]
id_column = "Primary Identifier"
where = """ $3 """
[cohort.normalize]
pad_numeric_to = 7
[guard]
${4:-}
max_members = 100000000
TOML
}

# `write_student_query FILE NAME`: the benches' cohort query — UGRAD and GRAD students, active,
# INTERNAL accounts only (about 46 % of the simulator's users), IDs padded to 7 digits.
write_student_query() {
  write_query "$1" "$2" "\"User Group\" IN ('UGRAD', 'GRAD') AND \"Status\" = 'Active'" 'account_type_column = "Account Type"'
}
