#!/bin/sh
# The agent was killed at its timeout: none of its processes may survive.
left=$(ps -o args | grep -c "^sleep 100[0-3]")
if [ "$left" = 0 ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt
