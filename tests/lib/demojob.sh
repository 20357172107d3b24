# How the demo job (testdata/job.yaml: the oracle on every task of test-dataset)
# must end, task by task, whichever provider ran it and wherever:
#   demo_outcomes JOB_DIR [why]  one line per trial, sorted: "TASK REWARDS EXCEPTION_TYPE"
#                           (REWARDS as compact JSON or null; EXCEPTION_TYPE or -);
#                           with "why", the start of each exception's message too
#   DEMO_EXPECTED           those lines for a correct run (test-dataset/README.md
#                           says what each task exercises)
DEMO_EXPECTED='agent-timeout {"reward":1.0} AgentTimeoutError
bad-reward null VerifierOutputParseError
empty-reward null RewardFileEmptyError
failing-build null RuntimeError
hello-busybox {"reward":1.0} -
hello-world {"reward":1.0} -
missing-solution null FileNotFoundError
multi-reward {"correct":1.0,"style":0.5} -
no-reward null RewardFileNotFoundError
verifier-timeout null VerifierTimeoutError'

demo_outcomes() {
	python3 - "$1" "${2:-}" <<'PY'
import glob, json, os, sys
rows = []
for f in glob.glob(os.path.join(sys.argv[1], "*", "result.json")):
    r = json.load(open(f))
    rewards = (r.get("verifier_result") or {}).get("rewards")
    exc = (r.get("exception_info") or {}).get("exception_type") or "-"
    row = "%s %s %s" % (r["task_name"], json.dumps(rewards, sort_keys=True, separators=(",", ":")), exc)
    if sys.argv[2] == "why":
        row += ": " + ((r.get("exception_info") or {}).get("exception_message") or "")[:300].replace("\n", " | ")
    rows.append(row)
print("\n".join(sorted(rows)))
PY
}
