"""Pydantic models of the files Harbor reads from a job directory, written for
rollout's compatibility check from Harbor 0.22.0's models (src/harbor/models/
{job,trial}/{config,result}.py, models/job/lock.py) and the classic 0.1.45
differences that matter. Like Harbor's, they ignore keys they do not know (rollout
writes some of its own); unlike Harbor's, every datetime must carry a timezone.

Only the fields Harbor validates are modelled; a file that passes here is one
Harbor's model_validate_json accepts.
"""
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- configs -------------------------------------------------------------------


class EnvironmentType(str, Enum):  # Harbor 0.22's members
    DOCKER = "docker"
    DAYTONA = "daytona"
    E2B = "e2b"
    MODAL = "modal"
    RUNLOOP = "runloop"
    LANGSMITH = "langsmith"
    EC2 = "ec2"
    GKE = "gke"
    ACK = "ack"
    OPENSHIFT = "openshift"
    NOVITA = "novita"
    APPLE_CONTAINER = "apple-container"
    SINGULARITY = "singularity"
    ISLO = "islo"
    TENSORLAKE = "tensorlake"
    CWSANDBOX = "cwsandbox"
    WANDB = "wandb"
    USE_COMPUTER = "use-computer"
    CUA_CLOUD = "cua-cloud"
    BLAXEL = "blaxel"
    OPENSANDBOX = "opensandbox"
    BEAM = "beam"
    SKYPILOT = "skypilot"
    HF_SANDBOX = "hf-sandbox"
    HYPERBROWSER = "hyperbrowser"


CLASSIC_ENVIRONMENT_TYPES = {"docker", "daytona", "e2b", "modal", "runloop", "gke"}


class AgentConfig(Model):
    name: str | None = None
    import_path: str | None = None
    model_name: str | None = None
    override_timeout_sec: float | None = None
    override_setup_timeout_sec: float | None = None
    max_timeout_sec: float | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_list(cls, v):
        if isinstance(v, list):
            return dict(item.split("=", 1) for item in v)
        return v


class EnvironmentConfig(Model):
    type: EnvironmentType | None = None
    import_path: str | None = None
    force_build: bool = False
    delete: bool = True
    override_cpus: int | None = None
    override_memory_mb: int | None = None
    override_storage_mb: int | None = None
    override_gpus: int | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env", mode="before")
    @classmethod
    def _env_list(cls, v):
        if isinstance(v, list):
            return dict(item.split("=", 1) for item in v)
        return v


class VerifierConfig(Model):
    override_timeout_sec: float | None = None
    max_timeout_sec: float | None = None
    disable: bool = False


class ArtifactConfig(Model):
    source: str
    destination: str | None = None


class TaskConfig(Model):
    path: Path | None = None
    git_url: str | None = None
    git_commit_id: str | None = None
    name: str | None = None
    ref: str | None = None
    overwrite: bool = False
    download_dir: Path | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _source(self):
        if (self.path is None) == (self.name is None):
            raise ValueError("exactly one of 'path' and 'name' must be set")
        if self.git_commit_id is not None and self.git_url is None:
            raise ValueError("'git_commit_id' requires 'git_url' to be set.")
        return self


class DatasetConfig(Model):
    path: Path | None = None
    name: str | None = None
    version: str | None = None
    ref: str | None = None
    registry_url: str | None = None
    registry_path: Path | None = None
    overwrite: bool = False
    download_dir: Path | None = None
    task_names: list[str] | None = None
    exclude_task_names: list[str] | None = None
    n_tasks: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _registry(cls, data):
        if isinstance(data, dict) and "registry" in data:
            data = dict(data)
            reg = data.pop("registry")
            if isinstance(reg, dict):
                if "url" in reg:
                    data.setdefault("registry_url", reg["url"])
                if "path" in reg:
                    data.setdefault("registry_path", reg["path"])
        return data

    @model_validator(mode="after")
    def _source(self):
        if (self.path is None) == (self.name is None):
            raise ValueError("exactly one of 'path' and 'name' must be set")
        return self


class RetryConfig(Model):
    max_retries: int = Field(default=0, ge=0)
    include_exceptions: set[str] | None = None
    exclude_exceptions: set[str] | None = None
    wait_multiplier: float = 1.0
    min_wait_sec: float = 1.0
    max_wait_sec: float = 60.0


class MetricConfig(Model):
    type: Literal["sum", "min", "max", "mean", "uv-script"] = "mean"
    kwargs: dict[str, Any] = Field(default_factory=dict)


class JobConfig(Model):
    job_name: str
    jobs_dir: Path = Path("jobs")
    n_attempts: int = 1
    timeout_multiplier: float = 1.0
    agent_timeout_multiplier: float | None = None
    verifier_timeout_multiplier: float | None = None
    agent_setup_timeout_multiplier: float | None = None
    environment_build_timeout_multiplier: float | None = None
    debug: bool = False
    n_concurrent_trials: int = Field(default=4, ge=1)
    quiet: bool = False
    retry: RetryConfig = Field(default_factory=RetryConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    metrics: list[MetricConfig] = Field(default_factory=list)
    agents: list[AgentConfig] = Field(default_factory=lambda: [AgentConfig()])
    datasets: list[DatasetConfig] = Field(default_factory=list)
    tasks: list[TaskConfig] = Field(default_factory=list)
    artifacts: list[str | ArtifactConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _orchestrator(cls, data):  # Harbor 0.22 migrates the classic key
        if isinstance(data, dict) and "orchestrator" in data:
            data = dict(data)
            orch = data.pop("orchestrator")
            if isinstance(orch, dict):
                data.setdefault("n_concurrent_trials", orch.get("n_concurrent_trials", 4))
                for k in ("quiet", "retry"):
                    if k in orch:
                        data.setdefault(k, orch[k])
        return data

    @model_validator(mode="after")
    def _resumable(self):
        # Job._resolve_task_configs: "Either datasets or tasks must be provided."
        if not self.datasets and not self.tasks:
            raise ValueError("Either datasets or tasks must be provided.")
        return self


class TrialConfig(Model):
    task: TaskConfig
    trial_name: str = ""
    trials_dir: Path = Path("trials")
    timeout_multiplier: float = 1.0
    agent_timeout_multiplier: float | None = None
    verifier_timeout_multiplier: float | None = None
    agent_setup_timeout_multiplier: float | None = None
    environment_build_timeout_multiplier: float | None = None
    agent: AgentConfig = Field(default_factory=AgentConfig)
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    artifacts: list[str | ArtifactConfig] = Field(default_factory=list)
    job_id: UUID | None = None


# --- results -------------------------------------------------------------------


class LocalTaskId(Model):
    path: Path


class GitTaskId(Model):
    git_url: str
    git_commit_id: str | None = None
    path: Path


class ModelInfo(Model):
    name: str
    provider: str  # classic 0.1.45 requires a string (0.22 allows None)


class AgentInfo(Model):
    name: str
    version: str
    model_info: ModelInfo | None = None


class AgentContext(Model):
    n_input_tokens: int | None = None
    n_cache_tokens: int | None = None
    n_output_tokens: int | None = None
    cost_usd: float | None = None
    rollout_details: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None


class VerifierResult(Model):
    rewards: dict[str, float | int] | None = None


class ExceptionInfo(Model):
    exception_type: str
    exception_message: str
    exception_traceback: str
    occurred_at: AwareDatetime


class TimingInfo(Model):
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None


class TrialResult(Model):
    id: UUID
    task_name: str
    trial_name: str
    trial_uri: str
    task_id: GitTaskId | LocalTaskId
    source: str | None = None
    task_checksum: str
    config: TrialConfig
    agent_info: AgentInfo
    agent_result: AgentContext | None = None
    verifier_result: VerifierResult | None = None
    exception_info: ExceptionInfo | None = None
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    environment_setup: TimingInfo | None = None
    agent_setup: TimingInfo | None = None
    agent_execution: TimingInfo | None = None
    verifier: TimingInfo | None = None
    verifier_environment_mode: Literal["shared", "separate"] | None = None


class AgentDatasetStats(Model):
    n_trials: int = 0
    n_errors: int = 0
    metrics: list[dict[str, float | int]] = Field(default_factory=list)
    reward_stats: dict[str, dict[float | int, list[str]]] = Field(default_factory=dict)
    exception_stats: dict[str, list[str]] = Field(default_factory=dict)
    pass_at_k: dict[int, float] = Field(default_factory=dict)


class JobStats(Model):
    n_trials: int = 0  # classic; 0.22 renamed them and keeps defaults for both
    n_errors: int = 0
    n_retries: int = 0
    n_running_trials: int = 0
    n_pending_trials: int = 0
    n_cancelled_trials: int = 0
    evals: dict[str, AgentDatasetStats] = Field(default_factory=dict)


class JobResult(Model):
    id: UUID
    started_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    n_total_trials: int
    stats: JobStats
    trial_results: list[TrialResult] = Field(default_factory=list)


# --- locks (0.22 models/job/lock.py) ---------------------------------------------


def _digest(v: str) -> str:
    hexpart = v.removeprefix("sha256:")
    if not v.startswith("sha256:") or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"Digest must be in 'sha256:<64 hex chars>' format. Got: {v}")
    return v


class TaskLock(Model):
    name: str
    version: str | None = None
    type: Literal["local", "git", "package"]
    digest: str
    source: str | None = None
    path: Path | None = None
    git_url: str | None = None
    git_commit_id: str | None = None

    _check = field_validator("digest")(classmethod(lambda cls, v: _digest(v)))


class VerifierLock(VerifierConfig):
    environment_mode: Literal["shared", "separate"] | None = None


class TrialLock(Model):
    schema_version: int = 2
    task: TaskLock
    install_only: bool = False
    timeout_multiplier: float = 1.0
    agent_timeout_multiplier: float | None = None
    verifier_timeout_multiplier: float | None = None
    agent_setup_timeout_multiplier: float | None = None
    environment_build_timeout_multiplier: float | None = None
    agent: AgentConfig
    skills: list[dict[str, Any]] = Field(default_factory=list)
    environment: EnvironmentConfig
    verifier: VerifierLock


class HarborLockInfo(Model):
    version: str | None = None
    git_commit_hash: str | None = None
    is_editable: bool | None = None


class JobLock(Model):
    schema_version: int = 3
    created_at: AwareDatetime
    harbor: HarborLockInfo = Field(default_factory=HarborLockInfo)
    n_concurrent_trials: int
    retry: RetryConfig
    trials: list[TrialLock] = Field(default_factory=list)
