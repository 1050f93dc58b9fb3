#!/usr/bin/env bash
# Time `make demo` from this checkout and record its output under benchmarks/results/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
start=$(date +%s)
make demo 2>&1 | tr '\r' '\n' | grep --line-buffered -v -E '^\s*$|[0-9]+%\|' | tee "$log"
seconds=$(( $(date +%s) - start ))
{
  echo "# \`make demo\` on $(nproc) CPU cores"
  echo
  echo "Date: $(date -u +%Y-%m-%d). Command: \`bash benchmarks/demo.sh\` (runs \`make demo\`). Wall time: ${seconds} s, install included."
  echo
  echo '```'
  cat "$log"
  echo '```'
} > benchmarks/results/demo.md
cp runs/demo/dynamics.png benchmarks/results/demo_dynamics.png
echo "recorded benchmarks/results/demo.md (${seconds} s)"
