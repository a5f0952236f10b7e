#!/usr/bin/env bash
# A command agent in Bash: counts to the input's "n" (default 3), reporting progress and a
# charge per step on descriptor 3 (see docs/agents.md, "Agents in any language").
#   {"n": 5}              counts to 5; the output is {"counted": 5, "by": "bash"}
#   {"fail": "error"}     ends with an error line (code "count_refused")
#   {"fail": "exit"}      exits with status 3 without an output line
#   {"sleep": SECONDS}    sleeps first (to be cancelled)
set -euo pipefail
input=$(cat)  # the task's input: one JSON object, then EOF

field() {  # the number or string value of a top-level field (enough for this example)
  if [[ $input =~ \"$1\"[[:space:]]*:[[:space:]]*\"?([A-Za-z0-9_.]+) ]]; then
    echo "${BASH_REMATCH[1]}"
  fi
}
n=$(field n); n=${n:-3}
fail=$(field fail)
pause=$(field sleep)

if [[ -n $pause ]]; then
  echo '{"progress": {"message": "sleeping"}}' >&3
  sleep "$pause"
fi
if [[ $fail == error ]]; then
  echo '{"error": {"code": "count_refused", "message": "asked to refuse"}}' >&3
  exit 0
fi
for ((i = 1; i <= n; i++)); do
  echo "counting $i of $n"  # stdout and stderr are the task's log
  printf '{"progress": {"current": %d, "total": %d, "message": "counted %d"}}\n' "$i" "$n" "$i" >&3
  echo '{"charge": "0.5", "description": "one step"}' >&3
done
echo "done counting" >&2
if [[ $fail == exit ]]; then
  exit 3
fi
printf '{"output": {"counted": %d, "by": "bash"}}\n' "$n" >&3
