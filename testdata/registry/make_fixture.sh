#!/bin/sh
# Build the registry test fixture in DIR (must not exist or be empty):
#   DIR/repo/           a git repository with tasks under tasks/ and four commits
#   DIR/local/alpha/    a local task (no git_url)
#   DIR/registry.json   datasets that point at DIR/repo with file:// URLs
#   DIR/commits.env     C1=<sha> C2=<sha> C3=<sha> (C3 is HEAD)
# Commits: C1 adds hello, count, other (v1); C2 changes hello (v2) and adds
# late; C3 changes count (v2). The dataset "demo" has versions 1.0 (pinned to
# C1), 2.0 (pinned to C2) and head (no commit: the repository's HEAD).
set -eu
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
repo=$dir/repo

task() { # task REL VERSION
	mkdir -p "$1/environment" "$1/tests" "$1/solution"
	printf 'version = "1.0"\n\n[verifier]\ntimeout_sec = 60.0\n' >"$1/task.toml"
	printf '%s %s\n' "$(basename "$1")" "$2" >"$1/instruction.md"
	printf 'FROM scratch\n' >"$1/environment/Dockerfile"
	printf '#!/bin/sh\necho 1 > /logs/verifier/reward.txt\n' >"$1/tests/test.sh"
	printf '#!/bin/sh\ntrue\n' >"$1/solution/solve.sh"
	chmod +x "$1/tests/test.sh" "$1/solution/solve.sh"
}

git init -q -b main "$repo"
cd "$repo"
git config user.email fixture@rollout.test
git config user.name fixture
git config commit.gpgsign false
# Let the clone's --filter=blob:none work over file:// (as it does on GitHub).
git config uploadpack.allowFilter true
task tasks/hello v1
task tasks/count v1
task tasks/other v1
git add -A && git commit -q -m c1
c1=$(git rev-parse HEAD)
task tasks/hello v2
task tasks/late v1
git add -A && git commit -q -m c2
c2=$(git rev-parse HEAD)
task tasks/count v2
git add -A && git commit -q -m c3
c3=$(git rev-parse HEAD)

cd "$dir"
task local/alpha v1
url="file://$repo"
cat >registry.json <<JSON
[
    {
        "name": "demo",
        "version": "1.0",
        "description": "pinned to the first commit",
        "tasks": [
            {"name": "hello", "git_url": "$url", "git_commit_id": "$c1", "path": "tasks/hello"},
            {"name": "count", "git_url": "$url", "git_commit_id": "$c1", "path": "tasks/count"},
            {"name": "other", "git_url": "$url", "git_commit_id": "$c1", "path": "tasks/other"}
        ],
        "metrics": [{"type": "mean", "kwargs": {}}]
    },
    {
        "name": "demo",
        "version": "2.0",
        "description": "pinned to the second commit",
        "tasks": [
            {"name": "hello", "git_url": "$url", "git_commit_id": "$c2", "path": "tasks/hello"},
            {"name": "count", "git_url": "$url", "git_commit_id": "$c2", "path": "tasks/count"},
            {"name": "late", "git_url": "$url", "git_commit_id": "$c2", "path": "tasks/late"}
        ]
    },
    {
        "name": "demo",
        "version": "head",
        "description": "follows HEAD",
        "tasks": [
            {"name": "hello", "git_url": "$url", "git_commit_id": null, "path": "tasks/hello"},
            {"name": "count", "git_url": "$url", "path": "tasks/count"},
            {"name": "late", "git_url": "$url", "path": "tasks/late"}
        ],
        "metrics": [{"type": "max"}]
    },
    {
        "name": "mixed",
        "version": "0.1",
        "description": "a local task and a git task",
        "tasks": [
            {"path": "local/alpha"},
            {"git_url": "$url", "git_commit_id": "$c1", "path": "tasks/other"}
        ]
    },
    {
        "name": "broken",
        "version": "1",
        "description": "tasks that cannot be fetched",
        "tasks": [
            {"name": "no-repo", "git_url": "file://$dir/no-such-repo", "path": "tasks/hello"},
            {"name": "no-commit", "git_url": "$url", "git_commit_id": "0123456789abcdef0123456789abcdef01234567", "path": "tasks/hello"},
            {"name": "no-path", "git_url": "$url", "git_commit_id": "$c1", "path": "tasks/late"},
            {"name": "no-local", "path": "local/missing"}
        ]
    }
]
JSON
printf 'C1=%s\nC2=%s\nC3=%s\n' "$c1" "$c2" "$c3" >commits.env
