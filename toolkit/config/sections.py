"""The study file's sections besides its datasets: ``[study]``, ``[[models]]``, ``[actions]``
(with its rules and cascades), ``[estimation]``, ``[simulation]``, ``[probe]``, ``[split]``,
``[budgets]``, ``[policies]``, ``[learn]`` and ``[engine]``, each checked on its own
(``toolkit.config.study`` checks them against each other)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from toolkit.config.base import Fraction, Name, PositiveInt, _Section
from toolkit.presets import DATASET_PRESETS, MODEL_PRESETS, ModelPreset

POLICY_NAMES = (
    "oracle",
    "uniform",
    "best_fixed",
    "always",
    "random",
    "prompt_length",
    "difficulty_bins",
    "learned",
)
"""Policy families a study can compare (``toolkit.evaluate.expand_policies`` says what each
becomes): ``always`` is one ``always_<model>`` row per model, ``learned`` its deployments."""


class StudyInfo(_Section):
    """``[study]``: what the study is called and the seed everything derives from."""

    name: Name
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    description: str = ""
    separately: list[Literal["dataset", "model"]] = []
    """Allocate each dataset (``["dataset"]``), each model, or each pair of them on its own, as
    the paper does: one run per cell (``Study.cells``), all landing in one transaction; empty
    (the default): one run, one budget shared by every dataset and model."""

    cell: dict[Literal["datasets", "models"], list[Annotated[int, Field(ge=0)]]] = {}
    """Set by ``Study.cells`` on each cell: the positions of its datasets and models in the
    study it was split from (``{datasets = [1], models = [2]}``). The simulator keys its random
    streams by these positions, so a cell draws the questions and answers its datasets and
    models draw in the whole study (the same questions for every model of a dataset, independent
    samples per model; the features and token counts follow the cell's first model's view of
    difficulty), and a cell's stored config reruns to the same tables."""

    @field_validator("separately")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"separately names a key twice: {value}")
        return value

    @model_validator(mode="after")
    def _a_cell_is_not_split(self) -> StudyInfo:
        if self.cell and self.separately:
            raise ValueError("separately: a cell of a split study (study.cell) is not split again")
        return self

    @model_serializer(mode="wrap")
    def _without_default_cells(self, handler: SerializerFunctionWrapHandler) -> dict:
        """A study run as one (``separately = []``, no ``cell``) dumps as before the keys
        existed, so its config hash is unchanged."""
        dumped = handler(self)
        for key in ("separately", "cell"):
            if not getattr(self, key):
                dumped.pop(key, None)
        return dumped


class ModelSpec(_Section):
    """``[[models]]``: a model whose samples make up the actions.

    ``preset`` names a built-in model (see ``toolkit.presets``); any other field overrides it.
    ``accuracy`` maps a dataset preset to the overall single-sample accuracy to calibrate to,
    ``output_tokens`` to the mean output tokens of a sample: the simulator's targets. A model
    without a preset needs them only for simulated datasets (``Study`` checks that); for
    imported data a name is enough (and prices, for ``actions.cost = "usd"``).
    """

    name: Name
    preset: str | None = None
    accuracy: dict[str, Annotated[float, Field(gt=0.0, lt=1.0)]] | None = None
    level_slope: Annotated[float, Field(ge=0.0, le=20.0)] | None = None
    difficulty_spread: Annotated[float, Field(gt=0.0, le=20.0)] | None = None
    output_tokens: dict[str, Annotated[float, Field(gt=0.0, le=1_000_000.0)]] | None = None
    """Mean output tokens of one sample: at most 1e6 (token counts are 64-bit; a sample
    longer than any model's context is a typo)."""
    price_input_per_mtok: Annotated[float, Field(ge=0.0, le=1e6)] | None = None
    price_output_per_mtok: Annotated[float, Field(ge=0.0, le=1e6)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_targets_without_preset(cls, data: object) -> object:
        """Without a preset, absent targets are empty mappings (no dataset preset has one):
        the same config, and config hash, as the ``accuracy = {}`` a study once had to write."""
        if isinstance(data, dict) and data.get("preset") is None:
            return {"accuracy": {}, "output_tokens": {}, **data}
        return data

    @model_validator(mode="after")
    def _preset_known(self) -> ModelSpec:
        if self.preset is not None and self.preset not in MODEL_PRESETS:
            known = ", ".join(sorted(MODEL_PRESETS))
            raise ValueError(f"unknown model preset {self.preset!r}; known presets: {known}")
        for field_name in ("accuracy", "output_tokens"):
            unknown = sorted(set(getattr(self, field_name) or {}) - set(DATASET_PRESETS))
            if unknown:  # a typo'd key would be silently ignored
                known = ", ".join(sorted(DATASET_PRESETS))
                raise ValueError(
                    f"{field_name}: {unknown[0]!r} is not a dataset preset; known: {known}"
                )
        return self


class RuleSpec(_Section):
    """``[[actions.rules]]``: a family of stopping rules (adaptive actions, ``toolkit.rules``)
    over each model's stream of samples, one action per parameter value::

        [[actions.rules]]
        rule = "esc"            # stop after a window of w agreeing samples
        window = [2, 4]
        cap = 16                # the most samples it draws

    ``rule``: ``esc`` (``window``, each dividing ``cap``), ``adaptive_consistency``
    (``threshold``: the Beta posterior probability of the leader that stops, in (0.5, 1)),
    ``first_agree`` (``k``: stop when k samples agree) or ``until_verified`` (stop at the
    first sample the verifier accepts: ``aggregation = "pass"`` only). The voting rules answer by
    a majority over what they drew (``aggregation = "majority"`` only). ``models``: which models
    (every model when omitted)."""

    rule: Literal["esc", "adaptive_consistency", "first_agree", "until_verified"]
    cap: Annotated[int, Field(ge=1, le=1024)]
    window: list[Annotated[int, Field(ge=1, le=1024)]] = []
    threshold: list[Annotated[float, Field(gt=0.5, lt=1.0)]] = []
    k: list[Annotated[int, Field(ge=1, le=1024)]] = []
    models: Annotated[list[Name], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _parameters(self) -> RuleSpec:
        wanted = {
            "esc": "window",
            "adaptive_consistency": "threshold",
            "first_agree": "k",
            "until_verified": None,
            "agreement": None,
        }[self.rule]
        for name in ("window", "threshold", "k"):
            values = getattr(self, name)
            if name == wanted and not values:
                raise ValueError(f"{name}: rule {self.rule!r} needs at least one {name}")
            if name != wanted and values:
                raise ValueError(f"{name}: rule {self.rule!r} takes no {name}")
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has repeated values: {values}")
        for w in self.window:
            if self.cap % w:
                raise ValueError(f"window: w = {w} does not divide cap = {self.cap}")
        for k in self.k:
            if k > self.cap:
                raise ValueError(f"k: k = {k} exceeds cap = {self.cap}")
        return self

    def expand(self) -> list:
        """The family's rules (``toolkit.rules.Rule``), one per parameter value."""
        from toolkit.rules import Rule

        if self.rule == "esc":
            return [Rule("esc", self.cap, window=w) for w in self.window]
        if self.rule == "adaptive_consistency":
            return [Rule(self.rule, self.cap, threshold=t) for t in self.threshold]
        if self.rule == "first_agree":
            return [Rule("first_agree", self.cap, k=k) for k in self.k]
        return [Rule(self.rule, self.cap)]


class CascadeSpec(RuleSpec):
    """``[[actions.cascades]]``: ask models in turn, each with the stopping rule; when the rule
    ends unsure on one (its cap reached without its criterion: no agreement within the cap,
    nothing verified) the next model runs it on its own samples; the last one's answer
    stands (``toolkit.adaptive``). One action per parameter value, named
    ``mixtral-8x7b>gpt-4@agree(k=2,b<=4)``::

        [[actions.cascades]]
        models = ["mixtral-8x7b", "gpt-4"]   # the cheap model first
        rule = "until_verified"
        cap = 1

    ``models``: two or more, distinct, in the order asked. The rule's fields are
    ``[[actions.rules]]``'s; the cascade's rule must be exact (cap at most
    ``toolkit.rules.EXACT_MAX_CAP``, any cap for ``until_verified``).

    ``rule = "agreement"`` (a cascade's own, ``cap = 1``, three models): ask the first two
    models one answer each; when the answers agree that answer stands, else the third model is
    asked and its answer stands (FrugalGPT's cheap-models-agree check, from answers alone).
    Named ``a>b>c@agreement``. It needs the samples' answers (``columns.answer``, or
    ``models.<model>.answer`` for a wide log)."""

    rule: Literal[  # type: ignore[assignment]
        "esc", "adaptive_consistency", "first_agree", "until_verified", "agreement"
    ]
    models: Annotated[list[Name], Field(min_length=2)]

    @model_validator(mode="after")
    def _chain(self) -> CascadeSpec:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models: a cascade asks each model once, got {self.models}")
        if self.rule == "agreement":
            if self.cap != 1:
                raise ValueError(
                    f"cap: an agreement cascade asks one answer per model, not {self.cap}"
                )
            if len(self.models) != 3:
                raise ValueError(
                    "models: an agreement cascade asks two models and, when they disagree, a "
                    f"third (got {len(self.models)}; with two, the second's answer always "
                    "stands at both models' price)"
                )
            return self
        from toolkit.rules import EXACT_MAX_CAP  # numpy and scipy: only for cascades

        if self.rule != "until_verified" and self.cap > EXACT_MAX_CAP:
            raise ValueError(
                f"cap: a cascade's rule is estimated exactly, up to a cap of {EXACT_MAX_CAP} "
                f"(got {self.cap})"
            )
        return self


class ActionSpec(_Section):
    """``[actions]``: the action set is every model times every sample count ``b``.

    ``aggregation``: ``majority`` (majority vote over b samples, ties broken uniformly at
    random), ``pass`` (pass@b: correct if any of the b samples is, an oracle verifier) or
    ``best_of`` (best-of-b: the answer of the highest-scored of the b samples by their
    ``columns.score``, a reward model or verifier score, ties broken uniformly at random) or
    ``weighted`` (the score-weighted vote: the answer whose samples' scores add up to the most,
    ``toolkit.scores``).
    ``cost``: the unit of cost and of budgets: ``samples`` (b), ``tokens`` (the prompt's
    tokens, billed once, plus the expected output tokens of b samples) or ``usd`` (the same
    tokens times the model's prices, or the logged dollar cost of b samples).
    ``prompt``: whether b samples pay for the prompt ``once`` (one request asking for b
    completions, or a shared prefix cache) or once ``per_sample`` (b separate requests).
    ``fixed_cost``: added to every action's cost, in the unit of ``cost``, and known before
    spending (a verifier call, a per-request fee).
    """

    samples: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 2, 4, 8, 16]
    aggregation: Literal["majority", "pass", "best_of", "weighted"] = "majority"
    cost: Literal["samples", "tokens", "usd"] = "samples"
    prompt: Literal["once", "per_sample"] = "once"
    fixed_cost: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    score_weights: Literal["score", "sigmoid"] = "score"
    """``weighted``: each sample's vote weight is its score (none may be negative), or the
    logistic of it (scores that are logits, ``toolkit.scores``)."""
    rules: list[RuleSpec] = []
    """Adaptive actions: stopping rules (``RuleSpec``), besides the static b samples."""
    cascades: list[CascadeSpec] = []
    """Adaptive actions across models (``CascadeSpec``)."""

    @model_validator(mode="after")
    def _distinct(self) -> ActionSpec:
        if len(set(self.samples)) != len(self.samples):
            raise ValueError(f"samples has repeated values: {self.samples}")
        for index, spec in enumerate([*self.rules, *self.cascades]):
            voting = spec.rule not in ("until_verified", "agreement")
            if voting and self.aggregation != "majority":
                raise ValueError(
                    f"rules[{index}].rule: {spec.rule!r} answers by a majority vote; it needs "
                    f'aggregation = "majority", not {self.aggregation!r}'
                )
        return self


class EstimationSpec(_Section):
    """``[estimation]``: how acc(x, a) is estimated from the stored samples.

    ``samples_per_instance`` answers are drawn per instance and model (48 in the paper); the
    accuracy of an action is the exact probability over draws without replacement of ``b`` of
    them (``method = "exact"``).
    """

    samples_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 48
    method: Literal["exact"] = "exact"
    orders: Annotated[int, Field(ge=2, le=1_000_000)] = 2000
    """Stopping rules above ``toolkit.rules.EXACT_MAX_CAP``: the random orders of each
    instance's samples their seeded Monte Carlo runs (standard errors in ``outcomes``)."""
    tokenizer: Literal["cl100k_base", "o200k_base", "approx"] = "cl100k_base"
    """How tokens are counted from text where a log records none (prompts, responses):
    ``cl100k_base`` (GPT-4's BPE) or ``o200k_base`` (GPT-4o's), exact for those models and a
    close proxy for other BPE vocabularies (``toolkit.tokens``), or ``approx``, the regular
    expression of ``sql/features/approx_tokens.sql``, kept as a fallback."""


class SimulationSpec(_Section):
    """``[simulation]``: the simulator's knobs.

    ``wrong_answers``: distinct wrong answers per instance; ``wrong_concentration``: Dirichlet
    concentration of the wrong-answer mass (small: one dominant wrong answer, so a majority vote
    locks onto it on hard instances); ``feature_strength``: correlation of the cheap observable
    features with the latent difficulty; ``signal_noise``: noise sd of each declared noisy
    difficulty signal. (The probe is ``[probe]``: it reuses stored samples and is charged.)
    """

    wrong_answers: Annotated[int, Field(ge=1, le=32)] = 4
    wrong_concentration: Annotated[float, Field(gt=0.0, le=1000.0)] = 0.3
    feature_strength: Fraction = 0.5
    signal_noise: list[Annotated[float, Field(gt=0.0, le=100.0)]] = [0.75, 1.5]

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "probe_samples" in data:
            raise ValueError(
                "probe_samples: the probe moved to [probe] samples = k: it now takes k of the "
                "stored samples, which policies that see it pay for (toolkit.probe)"
            )
        return data


class ProbeSpec(_Section):
    """``[probe]``: a cheap look at every instance before allocating (``toolkit.probe``).

    ``samples = k``: the first k of each instance's stored samples of ``model`` (the first model
    when omitted), in a seeded order; 0, no probe. Policies that see the probe
    (``learned_probe``, ``oracle_probe``) choose among the probe's actions: b >= k samples of the
    probe model, the probe's reused, or another model's action after it; each costs the probe
    too."""

    samples: Annotated[int, Field(ge=0, le=1024)] = 0
    model: Name | None = None


class SplitSpec(_Section):
    """``[split]``: how instances are split, by instance and seeded, each dataset alike.

    ``folds = 1`` (the default): one split into ``train``, ``validation`` and ``test`` in the
    declared fractions. ``folds = k >= 2`` (cross-fitting, for small data): the instances are
    cut into k folds; each fold is the test split once, and the other folds are divided into
    train and validation in the proportion ``train : validation``, so every instance is scored
    exactly once by policies that never saw it. ``test`` is then 1/k and is not declared.
    """

    train: Fraction = 0.6
    validation: Fraction = 0.2
    test: Fraction = 0.2
    folds: Annotated[int, Field(ge=1, le=50)] = 1

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        if self.folds > 1:
            if "test" in self.model_fields_set:
                raise ValueError(
                    f"test: with folds = {self.folds} each fold is the test split once "
                    f"(1/{self.folds} of the instances); leave test out"
                )
            if min(self.train, self.validation) <= 0:
                raise ValueError("train and validation need positive fractions")
            return self
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        if min(self.train, self.validation, self.test) <= 0:
            raise ValueError("every split needs a positive fraction")
        return self

    @model_serializer(mode="wrap")
    def _without_test_when_folded(self, handler: SerializerFunctionWrapHandler) -> dict:
        """With folds the test share is 1/k, not a setting: a dump leaves it out, so that it
        validates again (and the config hash does not depend on an unused default)."""
        dumped = handler(self)
        if self.folds > 1:
            dumped.pop("test", None)
        return dumped


class BudgetSpec(_Section):
    """``[budgets]``: target mean cost per instance, in the unit of ``actions.cost``.

    ``values``: the budgets every table and the report are about. ``grid``: how many more
    budgets, spaced geometrically over the feasible range, every policy is also run at, so that
    each has an accuracy-versus-realised-cost curve (matched-spend comparisons, AIQ).
    ``tolerance``: a policy whose realised mean cost exceeds B by more than this fraction is
    flagged as over budget and ranked after those within it.
    """

    values: Annotated[
        list[Annotated[float, Field(gt=0.0, allow_inf_nan=False)]], Field(min_length=1)
    ] = [2.0, 4.0, 8.0]
    grid: Annotated[int, Field(ge=0, le=400)] = 24
    tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02

    @model_validator(mode="after")
    def _distinct(self) -> BudgetSpec:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values has repeated budgets: {self.values}")
        return self


class PolicySpec(_Section):
    """``[policies]``: which allocation policies to compare at every budget."""

    compare: Annotated[list[Literal[POLICY_NAMES]], Field(min_length=1)] = list(  # type: ignore[valid-type]
        POLICY_NAMES
    )


class LearnSpec(_Section):
    """``[learn]``: CatBoost settings for the learned policy."""

    iterations: Annotated[int, Field(ge=1, le=100_000)] = 300
    depth: Annotated[int, Field(ge=1, le=10)] = 6
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    thread_count: Annotated[int, Field(ge=1, le=64)] = 2
    seeds: Annotated[list[Annotated[int, Field(ge=0, lt=2**31)]], Field(min_length=1)] = [0, 1, 2]
    features: Annotated[
        list[Literal["metadata", "text_counts", "text", "signals", "probe", "declared"]],
        Field(min_length=1),
    ] = ["metadata", "text_counts", "text", "signals", "probe", "declared"]
    """The feature groups the learned policy (and the cost planner) see (``toolkit.features``):
    to measure what each group is worth, leave it out."""
    max_train_rows: PositiveInt = 50_000
    """At most this many training instances are pulled from the engine for CatBoost (a seeded
    sample beyond it), so learning stays bounded in time and memory at any N. A fit's time
    grows with its rows (about 30 s per fit at 200,000 rows, 8 actions, 100 iterations on 2
    cores), while the policy's quality is limited by the features, not by rows: a regressor
    fitted on 60,000 instances kept the same share of the oracle's gain as one fitted on 3,000
    (``toolkit.learn``)."""

    @model_validator(mode="after")
    def _distinct_seeds(self) -> LearnSpec:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds has repeated values: {self.seeds}")
        return self


class EngineSpec(_Section):
    """``[engine]``: where the core queries run (``toolkit.db``). Results do not depend on it,
    so it is not part of the config hash: the same study on another engine replaces its run."""

    url: str = "duckdb"
    """``duckdb`` (the study's DuckDB file) or ``pyspark://MASTER``, e.g. ``pyspark://local[2]``
    or ``pyspark://spark://host:7077``."""
    memory_limit: str | None = None
    """DuckDB's memory limit, e.g. ``"4GB"``; beyond it DuckDB spills to ``study.duckdb.tmp/``."""
    spark_config: dict[str, str] = {}
    """Spark settings for the session the toolkit starts, e.g. ``spark.driver.memory``."""

    @field_validator("url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from toolkit.engine_url import parse_engine_url  # not toolkit.db: no DuckDB, ibis

        parse_engine_url(value)
        return value

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", value
        ):
            raise ValueError(f"expected a size such as '4GB' or '512MiB', got {value!r}")
        return value


def resolve_model(spec: ModelSpec) -> ModelPreset:
    """The model's preset with the study file's overrides applied."""
    base = MODEL_PRESETS[spec.preset] if spec.preset else None
    overrides = {
        key: value
        for key, value in spec.model_dump(exclude={"name", "preset"}).items()
        if value is not None
    }
    if base is None:
        return ModelPreset(
            name=spec.name,
            accuracy=overrides.pop("accuracy"),
            output_tokens=overrides.pop("output_tokens"),
            price_input_per_mtok=overrides.pop("price_input_per_mtok", 0.0),
            price_output_per_mtok=overrides.pop("price_output_per_mtok", 0.0),
            **overrides,
        )
    merged = {**base.__dict__, "name": spec.name}
    for key in ("accuracy", "output_tokens"):
        if key in overrides:
            merged[key] = {**base.__dict__[key], **overrides.pop(key)}
    merged.update(overrides)
    return ModelPreset(**merged)
