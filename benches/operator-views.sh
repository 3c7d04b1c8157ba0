#!/bin/bash
# The operator views timed at production volume (BENCHMARKS.md, "Operator views"): each UI page,
# API list and /metrics loaded 5 times with curl, the median in seconds. Fill the database first
# (benches/history-fill.sql, benches/overview-fill.sql) and create bus `history` with rule `rule-7`.
#   benches/operator-views.sh http://127.0.0.1:8080 ADMIN_TOKEN
BASE=$1; TOKEN=$2
cookie=$(curl -s -i -X POST "$BASE/ui/login" -H 'content-type: application/x-www-form-urlencoded' --data "token=$TOKEN&next=%2Fui" | grep -i '^set-cookie' | sed 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/')
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_of() { # url, header
  local times=""
  for i in 1 2 3 4 5; do times="$times $(curl -s -o /dev/null -w "%{time_total}" -H "$2" "$1")"; done
  echo "$times" | median
}
for page in /ui /ui/dead-letters /ui/rules?bus=history /ui/rules/history/rule-7 /ui/events?bus=history /ui/schemas?bus=history; do
  echo "$page $(time_of "$BASE$page" "cookie: $cookie")"
done
for api in "/v1/dead-letters" "/v1/dead-letters?bus=history&dead_reason=final_status" "/v1/events?bus=history&limit=50"; do
  echo "$api $(time_of "$BASE$api" "authorization: Bearer $TOKEN")"
done
echo "/metrics $(time_of "$BASE/metrics" "accept: */*")"
