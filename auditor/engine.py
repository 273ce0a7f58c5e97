"""From a config (or in-memory objects) to an AuditResult: load, validate, run, collect."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .checks import CheckRegistry, default_registry
from .config import AuditConfig, parse_config, validate_check_options, validate_remedy_options
from .context import AuditContext, build_context
from .diff import AuditSnapshot, load_snapshot
from .findings import Status
from .inputs import LoadedModel, LoadedTable, load_model, load_table
from .model import PythonModel
from .remediation import EarlyRemedies, RemedyResult, discover_remedies, run_remedies
from .result import AuditInfo, AuditResult, DatasetInfo, environment
from .runner import Executor, Progress, run_checks
from .waivers import waive_checks


@dataclass
class Audit:
    """A prepared audit: validated context and the registry to run."""

    context: AuditContext
    registry: CheckRegistry
    tracebacks: dict[str, str] = field(default_factory=dict)
    baseline: AuditSnapshot | None = None  # [audit] baseline: the earlier audit to compare with
    client: Any = None  # [engine] backend = "dask": the connected distributed.Client
    in_process: dict[str, str] = field(default_factory=dict)  # checks run here instead (see RunOutput)
    where: str = ""  # where the last run's checks ran, e.g. "2 worker processes"
    remedies_beside_checks: tuple[str, ...] = ()  # the last run's remedies that ran in the check workers
    _executor: Executor | None = field(default=None, repr=False)

    def executor(self) -> Executor | None:
        """Where ``[engine]`` runs the checks: worker processes forked from this one, a Dask cluster, or
        None (in this process: one worker, a single check to run, or no fork on this system)."""
        engine = self.context.config.engine
        if engine.backend == "dask":
            from .cluster import DaskExecutor, connect

            client = self.client if self.client is not None and self.client.status == "running" \
                else connect(engine.address)
            self.client = client
            return DaskExecutor(self.context, self.registry, client, engine.address)
        from .parallel import local_executor

        skip = set(self.context.config.checks.skip)
        return local_executor(self.context, self.registry, sum(c not in skip for c in self.registry.ids()))

    @contextmanager
    def engine(self) -> Iterator[Audit]:
        """Start the workers now, e.g. before a progress display starts its thread (a process is forked
        best before it has other threads); ``run`` inside the block uses them."""
        self._executor = self.executor()
        if self._executor is not None:
            self._executor.open()
        try:
            yield self
        finally:
            if self._executor is not None:
                self._executor.close()
            self._executor = None

    def close(self) -> None:
        """Let go of a cluster connection (a local audit holds nothing between runs)."""
        if self.client is not None:
            from .cluster import _quiet

            with _quiet(), suppress(Exception):
                self.client.close()
            self.client = None

    def run(self, *, progress: Progress | None = None, today: date | None = None) -> AuditResult:
        """Run every check, then apply the config's waivers, judged on ``today`` (default: the day the
        audit starts, UTC; tests pass a fixed date so a rerun is reproducible)."""
        now = datetime.now(UTC)
        started = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        t0 = time.perf_counter()
        executor = self._executor if self._executor is not None else self.executor()
        from .parallel import ForkPool

        on = today or now.date()
        pool = executor if isinstance(executor, ForkPool) else None
        early = None
        if pool is not None and self.context.config.remediation.enabled:
            # the remedies that say which checks they read start in the workers once those are done
            early = pool.early = EarlyRemedies(self.context, on=on)
        try:
            out = run_checks(self.context, self.registry, progress=progress, executor=executor,
                             follow=early.check_done if early is not None else None,
                             first=early.awaited if early is not None else frozenset())
        finally:
            if pool is not None:
                pool.early = None
        self.tracebacks = out.tracebacks
        self.in_process, self.where = out.in_process, out.where
        self.remedies_beside_checks = tuple(early.results) if early is not None else ()
        checks = waive_checks(out.results, self.context.config.waivers, on)
        done = getattr(progress, "remedy_finished", None)
        workers = pool.workers if pool is not None else 1  # a local pool: its size
        remedies = run_remedies(self.context, checks, out.measurements, done=done if callable(done) else None,
                                workers=workers, early=early.results if early is not None else None)
        for r in remedies:
            if r.status is Status.ERROR:
                self.tracebacks[f"remediation {r.id}"] = r.reason
        return AuditResult(info=audit_info(self.context), checks=checks, started_at=started,
                           duration_s=time.perf_counter() - t0, baseline=self.baseline,
                           remedies=tuple(_without_traceback(r) for r in remedies))


def _without_traceback(r: RemedyResult) -> RemedyResult:
    from dataclasses import replace

    return replace(r, reason="") if r.status is Status.ERROR else r


def _validate_remedies(config: AuditConfig) -> None:
    validate_remedy_options(config, {rid: cls.defaults() for rid, cls in discover_remedies().items()})


def prepare(config: AuditConfig, registry: CheckRegistry | None = None, *,
            step: Callable[[str], None] | None = None) -> Audit:
    """Load and validate every input named by the config. Raises AuditInputError (exit 2).

    ``step`` is told what is being done ("loading the model", ...) for the CLI's progress lines.
    """
    say = step or (lambda _text: None)
    registry = registry or default_registry()
    validate_check_options(config, registry.defaults(), registry)
    _validate_remedies(config)
    if config.audit.baseline:
        say(f"reading the baseline {Path(config.audit.baseline).name}")
    baseline = load_snapshot(config.audit.baseline) if config.audit.baseline else None
    client = None
    if config.engine.backend == "dask":
        from .cluster import connect

        say(f"connecting to the Dask scheduler at {config.engine.address}")
        client = connect(config.engine.address)  # before loading anything: an unreachable cluster is exit 2
    try:
        # a model whose own code runs (Python object, trusted pickle) is hosted in a worker process,
        # so its sys.exit, os._exit, crash or hang cannot end the audit (auditor.modelhost)
        say(f"loading the model {_file_name(config.model.path)}")
        model = load_model(config.model.path, trusted=config.model.trusted, timeout_s=config.model.timeout_s)
    except BaseException:
        _close_client(client)
        raise
    try:
        say(f"loading the test data {_file_name(config.data.test)}")
        test = load_table(config.data.test, role="test")
        if config.data.train:
            say(f"loading the training data {_file_name(config.data.train)}")
        train = load_table(config.data.train, role="train") if config.data.train else None
        outputs = _score_on_cluster(client, config, model, test, train, say) if client is not None else {}
        say("checking the inputs and predicting the test rows")
        ctx = build_context(config, model, test, train, outputs=outputs)
        validate_inputs(ctx, registry)
    except BaseException:
        close = getattr(model.adapter, "close", None)
        if callable(close):
            close()
        _close_client(client)
        raise
    return Audit(context=ctx, registry=registry, baseline=baseline, client=client)


def _score_on_cluster(client: Any, config: AuditConfig, model: LoadedModel, test: LoadedTable,
                      train: LoadedTable | None, say: Callable[[str], None]) -> dict[str, Any]:
    """The model's output on each Parquet dataset directory, computed partition by partition on the
    cluster's workers (``auditor.cluster.score_dataset``)."""
    from .cluster import score_dataset

    outputs: dict[str, Any] = {}
    for role, table in (("test", test), ("train", train)):
        if table is not None and table.parts:
            say(f"scoring the {role} data on the cluster ({len(table.parts)} part files)")
            output = score_dataset(client, model, table, config, role)
            if output is not None:
                outputs[role] = output
    return outputs


def _close_client(client: Any) -> None:
    if client is not None:
        from .cluster import _quiet

        with _quiet(), suppress(Exception):
            client.close()


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def validate_inputs(ctx: AuditContext, registry: CheckRegistry) -> None:
    """Each configured check's options against the loaded inputs, before any check runs (exit 2)."""
    skip = set(ctx.config.checks.skip)
    for check_id, options in ctx.config.checks.options.items():
        if check_id in registry and check_id not in skip:
            registry[check_id](**dict(options)).validate_inputs(ctx)


def _frame_table(df: pd.DataFrame, role: str) -> LoadedTable:
    import hashlib

    digest = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes()).hexdigest()
    return LoadedTable(path=f"<in-memory {role} DataFrame>", sha256=digest, frame=df)


def prepare_objects(model: Any, *, test: pd.DataFrame, target: str, train: pd.DataFrame | None = None,
                    protected: tuple[str, ...] | list[str] = (), features: tuple[str, ...] | list[str] = (),
                    task: str | None = None, positive_class: Any = None, threshold: float = 0.5,
                    favorable: Any = None, seed: int = 0, name: str = "audit", fail_on: str = "high",
                    checks: dict[str, dict[str, Any]] | None = None, skip: tuple[str, ...] | list[str] = (),
                    expect: dict[str, Any] | None = None, categorical: tuple[str, ...] | list[str] = (),
                    id: str | None = None, reference: dict[str, Any] | None = None,
                    title: str = "", owner: str = "",
                    waivers: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
                    remediation: dict[str, Any] | None = None, engine: dict[str, Any] | None = None,
                    registry: CheckRegistry | None = None) -> Audit:
    """Prepare an audit of in-memory objects (the notebook API and tests)."""
    raw: dict[str, Any] = {
        "audit": {"name": name, "seed": seed, "fail_on": fail_on},
        "model": {"path": "<in-memory model>", "threshold": threshold},
        "data": {"test": "<in-memory>", "target": target, "protected": list(protected),
                 "features": list(features), "categorical": list(categorical)},
        "checks": {"skip": list(skip), **(checks or {})},
        "report": {"title": title, "owner": owner},
    }
    if task:
        raw["model"]["task"] = task
    for key, value in (("positive_class", positive_class), ("favorable", favorable)):
        if value is not None:
            raw["model"][key] = value
    if id:
        raw["data"]["id"] = id
    if reference:
        raw["data"]["reference"] = dict(reference)
    if expect:
        raw["expect"] = dict(expect)
    if remediation is not None:
        raw["remediation"] = dict(remediation)  # as [remediation]: enabled, skip, "<id>" = {options}
    if engine is not None:
        raw["engine"] = dict(engine)  # as [engine]: workers, backend, address
    if waivers:
        raw["waiver"] = [dict(w) for w in waivers]  # as [[waiver]] tables: finding, reason, approved_by, expires
    config = parse_config(raw, base_dir=Path.cwd())
    # in-memory inputs have no files: keep the placeholders instead of resolved paths
    config = _replace_paths(config, train is not None)
    registry = registry or default_registry()
    validate_check_options(config, registry.defaults(), registry)
    _validate_remedies(config)
    import hashlib
    import pickle

    try:
        model_digest = hashlib.sha256(pickle.dumps(model)).hexdigest()
    except Exception:  # noqa: BLE001 - unpicklable objects get no content hash
        model_digest = ""
    loaded = LoadedModel(path="<in-memory model>", sha256=model_digest, adapter=PythonModel(model))
    ctx = build_context(config, loaded, _frame_table(test, "test"),
                        _frame_table(train, "train") if train is not None else None)
    validate_inputs(ctx, registry)
    return Audit(context=ctx, registry=registry)


def _replace_paths(config: AuditConfig, has_train: bool) -> AuditConfig:
    from dataclasses import replace

    data = replace(config.data, test="<in-memory test DataFrame>",
                   train="<in-memory train DataFrame>" if has_train else None)
    return replace(config, model=replace(config.model, path="<in-memory model>"), data=data)


def audit_info(ctx: AuditContext) -> AuditInfo:
    cfg = ctx.config

    def ds(tab: LoadedTable, df: pd.DataFrame) -> DatasetInfo:
        return DatasetInfo(path=tab.path, sha256=tab.sha256, rows=int(len(df)), columns=int(df.shape[1]))

    assert ctx.test_file is not None, "build_context always records the test data file"
    train = ds(ctx.train_file, ctx.train) if ctx.train_file is not None and ctx.train is not None else None

    config_text = ""
    if cfg.source:
        try:
            config_text = Path(cfg.source).read_text(encoding="utf-8")
        except OSError:
            config_text = ""
    return AuditInfo(
        name=cfg.audit.name, title=cfg.report.title, owner=cfg.report.owner, context=cfg.report.context,
        seed=cfg.audit.seed, fail_on=cfg.audit.fail_on, model_path=ctx.model.path, model_sha256=ctx.model.sha256,
        model_kind=ctx.model.adapter.kind, task=ctx.task, target=ctx.target, features=ctx.features,
        categorical=ctx.categorical, protected=ctx.protected,
        positive_class=_plain(ctx.positive_class), favorable=_plain(ctx.favorable), threshold=ctx.threshold,
        test=ds(ctx.test_file, ctx.test), train=train,
        config_path=cfg.source, config_sha256=cfg.sha256, config_text=config_text, environment=environment(),
        id_column=cfg.data.id, reference=tuple(sorted((str(k), str(v)) for k, v in cfg.data.reference.items())),
        monotone=tuple(sorted((str(k), int(v)) for k, v in cfg.expect.monotone.items())),
        immutable=tuple(cfg.expect.immutable),
        classes=tuple(_plain(c) for c in ctx.classes),
    )


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
