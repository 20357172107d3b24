#!/usr/bin/env python3
"""Harbor compatibility check of every job directory under the given roots.

  validate_jobs.py [--checksums] [--quiet] ROOT...

For each job directory (config.json with job_name and agents) and each trial
directory (config.json with task and trial_name), the files rollout wrote are
validated against Harbor 0.22's models (harbor_models.py): JobConfig, JobResult,
lock.json (JobLock/TrialLock), TrialConfig, TrialResult, plus the classic 0.1.45
rules that matter (model_info.provider a string, environment.type one of its
types or null). Files that are not JSON at all are not rollout's (rollout writes
atomically; hostile tests plant them) and are skipped, as Harbor's resume skips
them. Then a simulated Harbor resume: the subdirectories Harbor would delete (no
result.json) must hold no finished trial's data, and those it keeps must read as
trials.

--checksums also recomputes every local task's dirhash (harbor_dirhash.py) and
compares it with the trial's task_checksum.

Prints "checked: J jobs, T trials" and one line per problem; exit 1 on problems.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pydantic import ValidationError  # noqa: E402

import harbor_models as hm  # noqa: E402
from harbor_dirhash import dirhash_sha256  # noqa: E402

problems = []
counts = {"jobs": 0, "trials": 0}


def load(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return json.loads(data)
    except (OSError, ValueError):
        return None


def validate(model, path, what):
    data = load(path)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:3]
        )
        problems.append(f"{path}: not a Harbor {what}: {first}")
        return None


def classic_env(env, path):
    t = env.get("type") if isinstance(env, dict) else None
    if t is not None and t not in hm.CLASSIC_ENVIRONMENT_TYPES:
        problems.append(f"{path}: environment.type {t!r} is not a classic Harbor type")


def check_trial(d, checksums):
    counts["trials"] += 1
    cfg_path = os.path.join(d, "config.json")
    validate(hm.TrialConfig, cfg_path, "TrialConfig")
    cfg = load(cfg_path)
    if isinstance(cfg, dict):
        classic_env(cfg.get("environment"), cfg_path)
    lock = os.path.join(d, "lock.json")
    if os.path.exists(lock):
        validate(hm.TrialLock, lock, "TrialLock")
    elif os.path.exists(os.path.join(d, "result.json")):
        problems.append(f"{d}: finished trial without lock.json")
    res_path = os.path.join(d, "result.json")
    if not os.path.exists(res_path):
        return
    r = validate(hm.TrialResult, res_path, "TrialResult")
    raw = load(res_path)
    if isinstance(raw, dict):
        classic_env((raw.get("config") or {}).get("environment"), res_path)
        rw = (raw.get("verifier_result") or {}).get("rewards") or {}
        for k, v in rw.items():
            if isinstance(v, int) and not isinstance(v, bool):
                problems.append(f"{res_path}: reward {k!r} written as an int ({v}), not a float")
    if r is None or not checksums:
        return
    tp = str(getattr(r.task_id, "path", ""))
    if getattr(r.task_id, "git_url", None) is None and os.path.isdir(tp):
        try:
            want = dirhash_sha256(tp)
        except ValueError:
            return
        if want != r.task_checksum:
            problems.append(f"{res_path}: task_checksum {r.task_checksum} != dirhash {want}")


def simulated_harbor_resume(job):
    """What Harbor 0.22's Job._maybe_init_existing_job does to the directory."""
    for name in sorted(os.listdir(job)):
        d = os.path.join(job, name)
        if not os.path.isdir(d) or os.path.islink(d):
            continue
        if not os.path.exists(os.path.join(d, "result.json")):
            # Harbor deletes it: only an unfinished trial may be lost that way.
            for root, _, files in os.walk(d):
                if "result.json" in files and ".superseded" not in name:
                    problems.append(
                        f"{d}: Harbor's resume would delete it, with the finished "
                        f"result {os.path.join(root, 'result.json')}"
                    )
                    break
            continue
        raw = load(os.path.join(d, "result.json"))
        if raw is None:
            continue  # Harbor skips an unreadable result with a warning
        try:
            hm.TrialResult.model_validate(raw)
            hm.TrialConfig.model_validate(load(os.path.join(d, "config.json")) or {})
        except ValidationError:
            problems.append(f"{d}: Harbor's resume would misread it")


def check_job(d, checksums):
    counts["jobs"] += 1
    cfg_path = os.path.join(d, "config.json")
    validate(hm.JobConfig, cfg_path, "JobConfig")
    cfg = load(cfg_path)
    if isinstance(cfg, dict):
        classic_env(cfg.get("environment"), cfg_path)
    res = os.path.join(d, "result.json")
    if os.path.exists(res):
        validate(hm.JobResult, res, "JobResult")
        if not os.path.exists(os.path.join(d, "lock.json")):
            problems.append(f"{d}: job without lock.json")
    lock = os.path.join(d, "lock.json")
    if os.path.exists(lock):
        validate(hm.JobLock, lock, "JobLock")
    simulated_harbor_resume(d)


def kind(d):
    cfg = load(os.path.join(d, "config.json"))
    if not isinstance(cfg, dict):
        return None
    if "job_name" in cfg and "agents" in cfg:
        return "job"
    if "task" in cfg and "trial_name" in cfg:
        return "trial"
    return None


def main(argv):
    checksums = "--checksums" in argv
    quiet = "--quiet" in argv
    roots = [a for a in argv if not a.startswith("--")]
    for root in roots:
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = [n for n in dirnames if not os.path.islink(os.path.join(dirpath, n))]
            if "config.json" not in files:
                continue
            k = kind(dirpath)
            if k == "job":
                check_job(dirpath, checksums)
            elif k == "trial":
                check_trial(dirpath, checksums)
    if not quiet or problems:
        print(f"checked: {counts['jobs']} jobs, {counts['trials']} trials")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
