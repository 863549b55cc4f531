"""The adaptive actions' outcome rows: stopping rules and cascades across models.

An adaptive action (``actions.menu = 'adaptive'``) is decided before any sample, like a static
one, but spends while it samples (``toolkit.rules``):

- a stopping rule over one model's samples (``[[actions.rules]]``);
- a cascade (``[[actions.cascades]]``): the first model runs the rule; when the rule ends
  unsure (its cap reached without its criterion: no agreement, nothing verified) the next model
  runs it on its own samples, and so on; the last model's answer stands. The models' samples
  are independent, so with ``r_m`` the chance of reaching model m (the product of the earlier
  models' unsure shares)::

      acc  = sum_m r_m (P_m(sure and right) + [m last] P_m(unsure and right))
      cost = sum_m r_m cost_m(E_m[samples])

  ``until_verified`` stops on the log's own check where it records one (``samples.verified``,
  ``toolkit.rules.until_checked``), else on the correct flag;
- an ``agreement`` cascade of three models, one answer each: the first two agree, or the
  third answers (``_agreement``).

Per instance, the expected accuracy and the cost of the expected samples (``action_cost`` with
an expected b: each model's mean output tokens per sample times the samples it draws),
known_cost that of the fewest samples the first model's rule can stop at, acc_true under the
simulation's truth, the expected samples drawn (over every model); exact, or for a rule above
``toolkit.rules.EXACT_MAX_CAP`` a seeded Monte Carlo with its standard errors.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.errors import StudyError
from toolkit.rules import (
    EXACT_MAX_CAP,
    Rule,
    rule_outcomes_mc,
    rule_parts,
    rule_parts_iid,
    until_checked,
)

_MC_CELLS = 20_000_000
"""Monte Carlo block size: profiles x orders x samples held at once."""
_MC_STREAM = 0x5275_6C65
"""SeedSequence key of the Monte Carlo orders (with the study's seed, the action and block)."""


class _Stream:
    """One model's samples of every instance, as the rules see them: the distinct answer
    profiles, what a sample costs, and the truth in simulation."""

    def __init__(self, study, spec, profiles: pa.Table, prompts, truth: pa.Table | None):
        from toolkit.config import resolve_model
        from toolkit.outcomes import Usage, model_truth, pad_groups, profile_keys

        mine = profiles.filter(pc.equal(profiles.column("model"), spec.name)).sort_by("instance_id")
        self.study, self.name = study, spec.name
        self.ids = mine.column("instance_id").to_numpy()
        self.rows_n = mine.column("n").to_numpy().astype(np.float64)
        self.rows_correct = mine.column("n_correct").to_numpy().astype(np.float64)
        self.usage = Usage.of(mine, self.ids, prompts)
        self.model = resolve_model(spec)
        self.n, correct, wrong, self.inverse = profile_keys(mine)
        self.correct, self.wrong = pad_groups(correct), pad_groups(wrong)
        self.truth = model_truth(truth, spec.name)
        self.check = _logged_check(mine, self)
        self._parts: dict[Rule, np.ndarray] = {}

    def parts(self, rule: Rule) -> np.ndarray:
        """(4, instances): acc, expected samples, P(unsure), P(unsure and right); a logged
        check, where there is one, decides ``until_verified``."""
        if rule not in self._parts:
            if rule.kind == "until_verified" and self.check is not None:
                self._parts[rule] = until_checked(rule.cap, *self.check)
            else:
                profiles = rule_parts(rule, self.correct, self.wrong, self.n)
                self._parts[rule] = profiles[:, self.inverse]
        return self._parts[rule]

    def parts_true(self, rule: Rule) -> np.ndarray | None:
        return None if self.truth is None else rule_parts_iid(rule, *self.truth)

    def cost(self, samples) -> tuple[np.ndarray, np.ndarray]:
        from toolkit.outcomes import action_cost

        return action_cost(self.study.actions, samples, self.usage, self.model)


def adaptive_outcomes(
    study,
    profiles: pa.Table,
    prompt_tokens: pa.Table,
    truth: pa.Table | None = None,
    answers: pa.Table | None = None,
) -> pa.Table:
    """The outcome rows of the study's adaptive actions (see the module docstring).

    profiles: ``answer_profiles`` executed; truth: the simulation's (instance_id, model,
    p_correct, p_wrong) or None; answers: ``answer_counts`` executed (for ``agreement``
    cascades)."""
    from toolkit.outcomes import Prompts, action_table, cascade_name, nullable_floats

    actions = action_table(study)
    adaptive = actions.filter(pc.equal(actions.column("menu"), "adaptive")).to_pylist()
    rules = {rule.label: rule for family in study.actions.rules for rule in family.expand()}
    cascades = {
        cascade_name(spec.models, rule): (spec.models, rule)
        for spec in study.actions.cascades
        for rule in spec.expand()
    }
    prompts = Prompts(prompt_tokens)
    streams = {
        spec.name: _Stream(study, spec, profiles, prompts, truth)
        for spec in study.models
        if any(row["model"] == spec.name for row in adaptive)
        or any(spec.name in models for models, _ in cascades.values())
    }
    parts = []
    for row in adaptive:
        if row["name"] in cascades:
            models, rule = cascades[row["name"]]
            chain = [streams[m] for m in models]
            _same_instances(chain)
            if rule.kind == "agreement":
                columns = _agreement(chain, answers)
            else:
                columns = _cascade(rule, chain)
        else:
            columns = _single(rules[row["rule"]], streams[row["model"]], row["action_id"])
        ids = streams[row["model"]].ids
        parts.append(
            pa.table(
                {
                    "instance_id": pa.array(ids, pa.int64()),
                    "action_id": pa.array(np.full(len(ids), row["action_id"]), pa.int32()),
                    **{name: nullable_floats(values, len(ids)) for name, values in columns.items()},
                }
            )
        )
    return pa.concat_tables(parts)


def _single(rule: Rule, stream: _Stream, action_id: int) -> dict[str, np.ndarray | None]:
    """One model's stopping rule: exact, or the Monte Carlo above the exact caps."""
    if rule.kind == "until_verified" or rule.cap <= EXACT_MAX_CAP:
        acc, used = stream.parts(rule)[:2]
        acc_se = used_se = cost_se = None
    else:
        acc, used, acc_se, used_se = (
            x[stream.inverse] for x in _monte_carlo(rule, stream, action_id)
        )
    cost, _ = stream.cost(used)
    _, known = stream.cost(rule.least)
    if used_se is not None:
        cost_se = stream.cost(used + used_se)[0] - cost
    truth = stream.parts_true(rule)
    return {
        "acc": np.clip(acc, 0.0, 1.0),
        "cost": cost,
        "known_cost": known,
        "acc_true": None if truth is None else np.clip(truth[0], 0.0, 1.0),
        "samples": used,
        "acc_se": acc_se,
        "cost_se": cost_se,
    }


def cascade_outcome(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(acc, expected samples over every model, the chance of reaching each model) of a
    cascade from each model's ``rule_parts`` (4, n), in the order asked."""
    acc, samples = np.zeros(parts[0].shape[1]), np.zeros(parts[0].shape[1])
    reach, reached = np.ones(parts[0].shape[1]), []
    for position, (right, used, unsure, unsure_right) in enumerate(parts):
        last = position == len(parts) - 1
        reached.append(reach)
        acc += reach * (right - unsure_right + (unsure_right if last else 0.0))
        samples += reach * used
        reach = reach * unsure
    return acc, samples, reached


def _same_instances(chain: list[_Stream]) -> None:
    for stream in chain[1:]:
        if not np.array_equal(stream.ids, chain[0].ids):
            raise StudyError(
                f"a cascade from {chain[0].name!r} to {stream.name!r} needs samples of both "
                "models on every instance"
            )


def _cascade(rule: Rule, chain: list[_Stream]) -> dict[str, np.ndarray | None]:
    """The rule on each model in turn while it ends unsure (see the module docstring)."""
    parts = [stream.parts(rule) for stream in chain]
    acc, samples, reached = cascade_outcome(parts)
    cost = sum(r * s.cost(p[1])[0] for r, s, p in zip(reached, chain, parts, strict=True))
    truths = [stream.parts_true(rule) for stream in chain]
    known_truths = [t for t in truths if t is not None]
    acc_true = None
    if len(known_truths) == len(truths):
        acc_true = np.clip(cascade_outcome(known_truths)[0], 0.0, 1.0)
    _, known = chain[0].cost(rule.least)
    return {
        "acc": np.clip(acc, 0.0, 1.0),
        "cost": cost,
        "known_cost": known,
        "acc_true": acc_true,
        "samples": samples,
        "acc_se": None,
        "cost_se": None,
    }


def _agreement(chain: list[_Stream], answers: pa.Table | None) -> dict[str, np.ndarray | None]:
    """Two models' answers, the third's when they disagree (``CascadeSpec``). Each model's
    answer is one of its stored samples drawn uniformly, independently of the others', so with
    ``p_m(a)`` the share of model m's samples on the instance that give answer a::

        P(agree) = sum_a p_1(a) p_2(a),  acc = sum_a p_1(a) p_2(a) [a right] + (1 - P(agree)) acc_3
        cost = cost_1(1) + cost_2(1) + (1 - P(agree)) cost_3(1)

    with ``acc_3`` the third model's per-sample accuracy; under the simulation's truth the
    same with its answer distributions (wrong answers are shared by the models)."""
    first, second, third = chain
    if answers is None:
        raise ValueError("an agreement cascade needs the samples' answer counts")
    agree, agree_right = _shared_answers(answers, first, second)
    pairs = first.rows_n * second.rows_n
    p_agree, right = agree / pairs, agree_right / pairs
    escalate = 1.0 - p_agree
    one = np.ones(len(first.ids))
    asked = first.cost(one)[0] + second.cost(one)[0]
    acc_true = None
    if all(stream.truth is not None for stream in chain):
        (c1, w1), (c2, w2), (c3, _) = (stream.truth for stream in chain)  # type: ignore[misc]
        width = min(w1.shape[1], w2.shape[1])
        agree_true = c1 * c2 + (w1[:, :width] * w2[:, :width]).sum(axis=1)
        acc_true = np.clip(c1 * c2 + (1.0 - agree_true) * c3, 0.0, 1.0)
    return {
        "acc": np.clip(right + escalate * third.rows_correct / third.rows_n, 0.0, 1.0),
        "cost": asked + escalate * third.cost(one)[0],
        "known_cost": asked,
        "acc_true": acc_true,
        "samples": 2.0 + escalate,
        "acc_se": None,
        "cost_se": None,
    }


def _shared_answers(answers: pa.Table, first: _Stream, second: _Stream):
    """Per instance of ``first`` (in its order): the sum over answers a of m_1(a) m_2(a), and
    the same over first's right samples."""

    def of(stream: _Stream) -> pa.Table:
        mine = answers.filter(pc.equal(answers.column("model"), stream.name))
        return mine.select(["instance_id", "answer", "m", "correct"])

    both = of(first).join(
        of(second).drop_columns(["correct"]),
        keys=["instance_id", "answer"],
        join_type="inner",
        right_suffix="_2",
    )
    products = both.column("m").to_numpy().astype(np.float64) * both.column("m_2").to_numpy()
    right = both.column("correct").to_numpy(zero_copy_only=False).astype(bool)
    rows = np.searchsorted(first.ids, both.column("instance_id").to_numpy())
    agree, agree_right = np.zeros(len(first.ids)), np.zeros(len(first.ids))
    np.add.at(agree, rows, products)
    np.add.at(agree_right, rows, products * right)
    return agree, agree_right


def _monte_carlo(rule: Rule, stream: _Stream, action_id: int):
    """(acc, samples, acc_se, samples_se) per distinct profile, seeded, in blocks."""
    study, n = stream.study, stream.n
    orders = study.estimation.orders
    block = max(1, _MC_CELLS // (orders * max(int(n.max()), 1)))
    out: list[list[np.ndarray]] = [[], [], [], []]
    for i in range(0, len(n), block):
        rows = slice(i, i + block)
        values = rule_outcomes_mc(
            rule,
            stream.correct[rows],
            stream.wrong[rows],
            n[rows],
            orders=orders,
            seed=[study.study.seed, _MC_STREAM, action_id, i],
        )
        for column, value in zip(out, values, strict=True):
            column.append(value)
    return tuple(np.concatenate(column) for column in out)


def _logged_check(mine: pa.Table, stream: _Stream) -> tuple[np.ndarray, ...] | None:
    """(n, passed, passed and right, failed and right) per instance from a logged check
    (``samples.verified``), or None when the model's samples carry none."""
    if "n_checked" not in mine.column_names:
        return None
    checked = mine.column("n_checked").fill_null(0).to_numpy().astype(np.float64)
    if not checked.any():
        return None
    if not np.array_equal(checked, stream.rows_n):
        raise StudyError(
            f"model {stream.name!r}: a check is logged for some of its samples and not others "
            "(columns.check): until_verified needs it on every sample or none"
        )
    passed = mine.column("n_passed").to_numpy().astype(np.float64)
    passed_right = mine.column("n_passed_correct").to_numpy().astype(np.float64)
    return stream.rows_n, passed, passed_right, stream.rows_correct - passed_right


__all__ = ["adaptive_outcomes", "cascade_outcome"]
