#!/usr/bin/env bash
# Time `make demo` from this checkout and record its output under benchmarks/demo/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
start=$(date +%s)
make demo 2>&1 | tr '\r' '\n' | grep --line-buffered -v -E '^\s*$|[0-9]+%\|' | tee "$log"
seconds=$(( $(date +%s) - start ))
{
  echo "# \`make demo\` on $(nproc) CPU cores"
  echo
  echo "Date: $(date -u +%Y-%m-%d). Command: \`bash benchmarks/demo/demo.sh\` (runs \`make demo\`). Wall time: ${seconds} s, install included."
  echo
  echo '```'
  cat "$log"
  echo '```'
} > benchmarks/demo/results.md
cp runs/demo/dynamics.png benchmarks/demo/dynamics.png
echo "recorded benchmarks/demo/results.md (${seconds} s)"
