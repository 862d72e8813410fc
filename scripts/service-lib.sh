# Shared by scripts/kafka.sh and scripts/prometheus.sh (sourced, not run): timing, the
# cross-process lock, and a port probe. Each script sets CACHE before sourcing.

now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# Serialises fetch/start/stop across processes (test files run in parallel and may all
# call `start`). Children that outlive the script must not inherit the lock's fd 9.
lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
