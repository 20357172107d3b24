#!/bin/sh
correct=0; [ "$(cat /app/answer.txt 2>/dev/null)" = fast ] && correct=1
printf "{\"correct\": %s, \"style\": 0.5}\n" "$correct" > /logs/verifier/reward.json
