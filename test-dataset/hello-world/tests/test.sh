#!/bin/sh
# Runs the pytest checks offline and writes the reward the harness reads.
cd /app
if python3 -m pytest -q -p no:cacheprovider /tests/test_outputs.py; then
	echo 1 > /logs/verifier/reward.txt
else
	echo 0 > /logs/verifier/reward.txt
fi
