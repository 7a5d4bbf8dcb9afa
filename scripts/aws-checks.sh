#!/usr/bin/env bash
# AWS deployment checks (run by .ci/run): lint the SAM template, then build the Lambda
# bootstraps of functions/* once (release, x86_64: the arm64 std would come from rustup's server, which CI cannot
# reach; arm64 stays the template's default for real deployments) and print their sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

start=$(date +%s)
bin=$(python3 scripts/aws_venv.py cargo-lambda cfn-lint aws-sam-cli)
# cargo finds the `lambda` subcommand, and cargo-lambda finds zig, on PATH.
export PATH="$bin:$PATH"
echo "tools ready in $(( $(date +%s) - start )) s ($(cargo lambda --version), cfn-lint $(cfn-lint --version | awk '{print $2}'), $(sam --version))"

echo "== cfn-lint template.yaml"
cfn-lint template.yaml

echo "== sam validate --lint"
sam validate --lint --region us-east-1 --template-file template.yaml

functions=()
for dir in functions/*/; do
  functions+=("$(basename "$dir")")
done
echo "== cargo lambda build --release --x86-64: ${functions[*]}"
start=$(date +%s)
packages=()
for f in "${functions[@]}"; do packages+=(--package "$f"); done
cargo lambda build --release --x86-64 --locked "${packages[@]}"
echo "release build took $(( $(date +%s) - start )) s"

target=${CARGO_TARGET_DIR:-target}
for f in "${functions[@]}"; do
  bootstrap="$target/lambda/$f/bootstrap"
  [ -f "$bootstrap" ] || { echo "missing $bootstrap" >&2; exit 1; }
  bytes=$(stat -c %s "$bootstrap")
  printf '%-20s %8d KiB  %s\n' "$f" "$(( bytes / 1024 ))" "$bootstrap"
  # The goal (README → Benchmark (d)): said loudly, not a failure — a dependency bump must not
  # block unrelated work, but nobody should miss it either.
  if [ "$bytes" -ge 8000000 ]; then
    echo "WARNING: $f bootstrap is $bytes bytes, over the 8,000,000-byte goal" >&2
  fi
done
