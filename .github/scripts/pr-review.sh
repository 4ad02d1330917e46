#!/usr/bin/env bash
# The pull-request review comment, with no cloud credentials: for every shipped profile and stack, what the
# change does (mlcluster diff against the merge-base with main) and whether it meets the guardrails
# (mlcluster check). Writes Markdown to stdout; exits 1 when a guardrail fails or a render breaks.
set -euo pipefail

mlcluster="${MLCLUSTER:-.venv/bin/mlcluster}"
status=0

targets=()
while IFS= read -r profile; do targets+=("--profile $profile"); done < <("$mlcluster" profiles | awk 'NR > 1 {print $1}')
for stack_file in stacks/Pulumi.*.yaml; do
  stack="${stack_file#stacks/Pulumi.}"
  targets+=("--stack ${stack%.yaml}")
done

echo "## mlcluster review"
echo
echo "Rendered offline under Pulumi's mocks: no credentials, nothing deployed."
echo
for target in "${targets[@]}"; do
  read -r flag name <<<"$target"
  echo "<details><summary><b>${name}</b></summary>"
  echo
  diff_status=0
  "$mlcluster" diff "$flag" "$name" --markdown || diff_status=$?
  if [ "$diff_status" -gt 1 ]; then status=1; fi  # 1 only means "changes"
  check_status=0
  "$mlcluster" check "$flag" "$name" --markdown || check_status=$?
  if [ "$check_status" -ne 0 ]; then status=1; fi
  echo "</details>"
  echo
done
exit "$status"
