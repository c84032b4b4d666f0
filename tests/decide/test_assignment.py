"""Assignment: deterministic, uniform, sticky draws; holdouts and namespaces; exact propensities."""

from __future__ import annotations

import copy as copy_module
import hashlib
import json
import math
import os
import pickle
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path as FsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from tactful.decide.assignment import (
    DEFAULT_HOLDOUT,
    Allocation,
    Assigned,
    AssignmentCode,
    HeldOut,
    Namespace,
    NotCandidate,
    NotInNamespace,
    Outcome,
    Path,
    Strategy,
    Unit,
    UnitKind,
    Variation,
    assign,
    force,
    initial_seed,
    namespace_overlaps,
    needs_new_seed,
    next_seed,
    split_layout,
)

N = 20_000
P_BOUND = 1e-4
"""Generous: the draws are fixed by the seeds, so a pass is a pass on every run."""

keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
weights = st.one_of(st.integers(0, 20).map(float), st.floats(0.01, 50.0))
variation_sets = (
    st.lists(st.tuples(keys, weights), min_size=1, max_size=5, unique_by=lambda kw: kw[0])
    .filter(lambda kws: any(w > 0 for _, w in kws))
    .map(lambda kws: tuple(Variation(k, w) for k, w in kws))
)
holdouts = st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0]), st.floats(0.0, 1.0))
seeds = st.text(min_size=1, max_size=20)
ids = st.text(min_size=1, max_size=30)


@st.composite
def allocations(draw: st.DrawFn) -> Allocation:
    namespace = None
    if draw(st.booleans()):
        start, end = sorted(draw(st.lists(st.integers(0, 20), min_size=2, max_size=2, unique=True)))
        namespace = Namespace(draw(st.sampled_from(["n1", "n2"])), start / 20, end / 20)
    return Allocation(draw(keys), draw(seeds), draw(variation_sets), draw(holdouts), namespace)


def user(value: str) -> Unit:
    return Unit(UnitKind.USER_ID, value)


def run(allocation: Allocation, unit: Unit | None, *, may_hash_anonymous_id: bool = True) -> Outcome:
    return assign(allocation, unit, may_hash_anonymous_id=may_hash_anonymous_id)


def users(count: int = N, prefix: str = "user") -> list[Unit]:
    return [user(f"{prefix}-{i}") for i in range(count)]


def equal_split(count: int, seed: str = "seed-1", holdout: float | None = 0.0) -> Allocation:
    return Allocation("hero", seed, tuple(Variation(f"v{i:02}", 1.0) for i in range(count)), holdout)


def near(count: int, total: int, p: float) -> bool:
    """Within six standard deviations of a binomial count (and a little slack for p near 0 or 1)."""
    return abs(count - total * p) <= 6 * math.sqrt(total * p * (1 - p)) + 3


# -- determinism -----------------------------------------------------------------------------------


@given(allocations(), ids)
def test_the_same_inputs_give_the_same_outcome(allocation: Allocation, value: str) -> None:
    rebuilt = Allocation(
        allocation.key, allocation.seed, allocation.variations, allocation.holdout, allocation.namespace
    )
    first = run(allocation, user(value))
    assert run(rebuilt, user(value)) == first
    assert run(allocation, user(value)) == first


def fingerprint() -> list[list[str | None]]:
    """Outcomes of a few hundred units, with their draws written exactly (float.hex)."""
    allocation = Allocation(
        "hero", "seed-1", (Variation("b", 2.0), Variation("a", 1.0)), 0.1, Namespace("ns", 0.1, 0.9)
    )
    rows: list[list[str | None]] = []
    for unit in [*users(300), user("Åsa ✓"), user("\ud800")]:
        outcome = run(allocation, unit)
        draw = getattr(outcome, "draw", None)
        rows.append([type(outcome).__name__, getattr(outcome, "variation", None), draw and draw.hex()])
    return rows


def test_outcomes_are_the_same_in_every_process() -> None:
    # Python's hash() would change with PYTHONHASHSEED: the draws must not.
    root = FsPath(__file__).parents[2]
    script = (
        "import json; from tests.decide.test_assignment import fingerprint; print(json.dumps(fingerprint()))"
    )
    expected = fingerprint()
    assert {row[0] for row in expected} == {"Assigned", "HeldOut", "NotInNamespace"}
    for hash_seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(done.stdout) == expected


@given(allocations(), ids)
def test_a_copied_or_pickled_allocation_assigns_alike(allocation: Allocation, value: str) -> None:
    # Allocations keep prepared hash objects, which cannot be pickled as they are.
    for copy in (pickle.loads(pickle.dumps(allocation)), copy_module.deepcopy(allocation)):  # noqa: S301
        assert copy == allocation
        assert run(copy, user(value)) == run(allocation, user(value))


@given(seeds, ids)
def test_the_split_draw_is_the_documented_keyed_blake2b(seed: str, value: str) -> None:
    # Changing this construction moves every subject of every running experience: it is a contract.
    allocation = Allocation("e", seed, (Variation("a", 1.0), Variation("b", 1.0)), 0.0)
    outcome = run(allocation, user(value))
    key = hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=32, person=b"tactful.seed")
    digest = hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), digest_size=8, key=key.digest(), person=b"split"
    )
    assert isinstance(outcome, Assigned)
    assert outcome.draw == (int.from_bytes(digest.digest(), "big") >> 11) / 2**53
    assert outcome.variation == ("a" if outcome.draw < 0.5 else "b")


# -- uniformity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["seed-1", "seed-2", initial_seed("experience-3")])
def test_the_split_draw_is_uniform(seed: str) -> None:
    allocation = equal_split(20, seed)
    counts = Counter(getattr(run(allocation, unit), "variation", None) for unit in users())
    assert set(counts) == {f"v{i:02}" for i in range(20)}
    assert stats.chisquare(list(counts.values())).pvalue > P_BOUND


def test_the_holdout_draw_is_uniform() -> None:
    allocation = Allocation("hero", "seed-1", (Variation("a", 1.0), Variation("b", 1.0)), holdout=1.0)
    draws = [run(allocation, unit) for unit in users()]
    assert all(isinstance(outcome, HeldOut) for outcome in draws)
    counts = Counter(int(outcome.draw * 20) for outcome in draws if isinstance(outcome, HeldOut))
    assert len(counts) == 20
    assert stats.chisquare(list(counts.values())).pvalue > P_BOUND


def test_a_namespace_puts_each_subject_in_exactly_one_range_uniformly() -> None:
    tenths = [
        Allocation(f"e{i}", f"seed-{i}", (Variation("on", 1.0),), 0.0, Namespace("ns", i / 10, (i + 1) / 10))
        for i in range(10)
    ]
    counts: Counter[str] = Counter()
    for unit in users():
        inside = [a.key for a in tenths if not isinstance(run(a, unit), NotInNamespace)]
        assert len(inside) == 1
        counts[inside[0]] += 1
    assert stats.chisquare(list(counts.values())).pvalue > P_BOUND


# -- weights and holdouts --------------------------------------------------------------------------


@settings(max_examples=25)
@given(variation_sets, holdouts, seeds)
def test_weights_and_holdout_share_are_respected(
    variations: tuple[Variation, ...], holdout: float | None, seed: str
) -> None:
    allocation = Allocation("hero", seed, variations, holdout)
    total = 2_000
    outcomes = [run(allocation, unit) for unit in users(total)]
    share = allocation.holdout_share
    assert near(sum(isinstance(o, HeldOut) for o in outcomes), total, share)
    counts = Counter(o.variation for o in outcomes if isinstance(o, Assigned))
    weight_sum = math.fsum(v.weight for v in variations)
    for v in variations:
        assert near(counts[v.key], total, v.weight / weight_sum * (1 - share))
        if v.weight == 0:
            assert counts[v.key] == 0
    for o in outcomes:
        if isinstance(o, Assigned):
            weight = next(v.weight for v in variations if v.key == o.variation)
            assert math.isclose(o.propensity, weight / weight_sum * (1 - share), abs_tol=1e-12)


def test_the_holdout_is_independent_of_the_variation() -> None:
    variations = (Variation("a", 1.0), Variation("b", 2.0), Variation("c", 3.0))
    held = Allocation("hero", "seed-1", variations, holdout=0.2)
    open_ = Allocation("hero", "seed-1", variations, holdout=0.0)
    table: Counter[tuple[bool, str]] = Counter()
    for unit in users():
        would_be = run(open_, unit)
        outcome = run(held, unit)
        assert isinstance(would_be, Assigned)
        if isinstance(outcome, Assigned):
            # The holdout carves subjects out; it moves nobody between variations.
            assert outcome.variation == would_be.variation
        table[isinstance(outcome, HeldOut), would_be.variation] += 1
    assert near(sum(n for (out, _), n in table.items() if out), N, 0.2)
    rows = [[table[out, v.key] for v in variations] for out in (True, False)]
    assert stats.chi2_contingency(rows).pvalue > P_BOUND


@given(allocations(), ids, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_raising_the_holdout_share_only_adds_held_out_subjects(
    allocation: Allocation, value: str, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    fewer, more = (
        run(Allocation(allocation.key, allocation.seed, allocation.variations, share), user(value))
        for share in (low, high)
    )
    if isinstance(fewer, HeldOut):
        assert isinstance(more, HeldOut)
    if isinstance(more, Assigned):
        assert isinstance(fewer, Assigned)
        assert fewer.variation == more.variation


def test_holdout_defaults_to_five_percent_with_several_variations_and_none_with_one() -> None:
    assert equal_split(2, holdout=None).holdout_share == DEFAULT_HOLDOUT == 0.05
    single = Allocation("hero", "seed-1", (Variation("only", 1.0), Variation("off", 0.0)))
    assert single.holdout_share == 0.0
    assert single.strategy is Strategy.RULE
    assert Allocation("hero", "seed-1", (Variation("only", 1.0),), holdout=0.1).holdout_share == 0.1


# -- namespaces ------------------------------------------------------------------------------------


@st.composite
def namespace_members(draw: st.DrawFn, grid: int = 20) -> list[Allocation]:
    cuts = sorted(draw(st.lists(st.integers(0, grid), min_size=2, max_size=8, unique=True)))
    ranges = [(cuts[i] / grid, cuts[i + 1] / grid) for i in range(0, len(cuts) - 1, 2)]
    return [
        Allocation(f"e{i}", draw(seeds), draw(variation_sets), draw(holdouts), Namespace("ns", start, end))
        for i, (start, end) in enumerate(draw(st.permutations(ranges)))
    ]


@settings(max_examples=25)
@given(namespace_members())
def test_no_subject_is_in_two_experiences_of_one_namespace(members: list[Allocation]) -> None:
    assert namespace_overlaps(members) == ()
    total = 2_000
    inside = Counter(
        sum(not isinstance(run(a, unit), NotInNamespace) for a in members) for unit in users(total)
    )
    assert set(inside) <= {0, 1}
    covered = math.fsum(a.namespace.width for a in members if a.namespace is not None)
    assert near(inside[1], total, covered)


def test_overlapping_ranges_of_one_namespace_are_reported() -> None:
    def member(key: str, name: str, start: float, end: float) -> Allocation:
        return Allocation(key, "seed", (Variation("a", 1.0),), 0.0, Namespace(name, start, end))

    a, b = member("a", "ns", 0.0, 0.5), member("b", "ns", 0.4, 0.8)
    c, d = member("c", "ns", 0.8, 1.0), member("d", "other", 0.0, 1.0)
    assert namespace_overlaps([a, b, c, d, equal_split(2)]) == (("a", "b"),)


# -- stickiness and seeds --------------------------------------------------------------------------


@given(
    st.lists(st.tuples(keys, st.integers(0, 9)), min_size=1, max_size=5, unique_by=lambda kw: kw[0]).filter(
        lambda kws: any(w > 0 for _, w in kws)
    ),
    st.integers(1, 1000),
    st.randoms(use_true_random=False),
    holdouts,
    seeds,
    ids,
)
def test_edits_that_move_nobody_keep_the_seed_and_the_assignment(
    pairs: list[tuple[str, int]], scale: int, rng: random.Random, holdout: float | None, seed: str, value: str
) -> None:
    before = tuple(Variation(k, float(w)) for k, w in pairs)
    # What a content edit, a reorder, a scaling of every weight or an unused variation leave.
    after = [Variation(k, float(w * scale)) for k, w in pairs]
    rng.shuffle(after)
    after.append(Variation("new-unused", 0.0))
    assert not needs_new_seed(before, after)
    assert split_layout(before) == split_layout(after)
    outcome = run(Allocation("e", seed, before, holdout), user(value))
    assert run(Allocation("e", seed, tuple(after), holdout), user(value)) == outcome


def test_changes_of_the_split_need_a_new_seed() -> None:
    base = (Variation("a", 1.0), Variation("b", 1.0))
    assert needs_new_seed(base, (Variation("a", 1.0), Variation("b", 2.0)))
    assert needs_new_seed(base, (*base, Variation("c", 1.0)))
    assert needs_new_seed(base, (Variation("a", 1.0), Variation("c", 1.0)))
    assert needs_new_seed(base, (Variation("a", 1.0),))


def test_a_new_seed_re_randomises_independently_of_the_old_assignment() -> None:
    old = Allocation("hero", "seed-1", (Variation("a", 1.0), Variation("b", 1.0)), 0.0)
    new = Allocation("hero", next_seed("seed-1"), (Variation("a", 4.0), Variation("b", 1.0)), 0.0)
    table: Counter[tuple[str, str]] = Counter()
    for unit in users():
        first, second = run(old, unit), run(new, unit)
        assert isinstance(first, Assigned)
        assert isinstance(second, Assigned)
        table[first.variation, second.variation] += 1
    rows = [[table[a, b] for b in "ab"] for a in "ab"]
    assert stats.chi2_contingency(rows).pvalue > P_BOUND


@given(seeds, ids, ids)
def test_seeds_are_fresh(seed: str, first: str, second: str) -> None:
    chain = [seed]
    for _ in range(20):
        chain.append(next_seed(chain[-1]))
    assert len(set(chain)) == len(chain)
    assert (initial_seed(first) == initial_seed(second)) == (first == second)


# -- who can be hashed -----------------------------------------------------------------------------


@given(allocations(), ids)
def test_an_anonymous_id_is_hashed_only_with_the_allowances_permission(
    allocation: Allocation, value: str
) -> None:
    anonymous = Unit.of(user_id=None, anonymous_id=value)
    assert anonymous == Unit(UnitKind.ANONYMOUS_ID, value)
    refused = run(allocation, anonymous, may_hash_anonymous_id=False)
    if allocation.needs_hash:
        assert refused == NotCandidate(allocation.key, AssignmentCode.DEVICE_IDENTIFIER)
        assert run(allocation, None) == NotCandidate(allocation.key, AssignmentCode.NO_UNIT)
    else:
        # One variation for everyone, no holdout, no namespace: nothing about the subject is read.
        assert refused == Assigned(
            allocation.key, split_layout(allocation.variations)[0][0], Strategy.RULE, 1.0
        )
        assert run(allocation, None) == refused
    assert run(allocation, anonymous, may_hash_anonymous_id=True) == run(allocation, user(value))
    # A user id is not a device identifier, and wins over the anonymous id.
    both = Unit.of(user_id=value, anonymous_id="device-1")
    assert both == user(value)
    assert run(allocation, both, may_hash_anonymous_id=False) == run(allocation, user(value))


def test_no_identifier_is_no_unit() -> None:
    assert Unit.of(user_id=None, anonymous_id=None) is None
    assert Unit.of(user_id="", anonymous_id="") is None


def test_draws_and_identifiers_stay_out_of_reprs() -> None:
    allocation = Allocation("hero", "seed-1", (Variation("a", 1.0), Variation("b", 1.0)), holdout=1.0)
    unit = user("alice@example.com")
    outcome = run(allocation, unit)
    assert isinstance(outcome, HeldOut)
    assert "alice" not in repr(unit)
    assert repr(outcome.draw) not in repr(outcome)


# -- forced answers --------------------------------------------------------------------------------


def test_a_forced_answer_is_logged_as_forced_and_never_learned_from() -> None:
    allocation = Allocation("hero", "seed-1", (Variation("a", 1.0), Variation("b", 0.0)), 0.5)
    forced = force(allocation, "b")
    assert forced == Assigned("hero", "b", Strategy.FORCED, 1.0)
    assert forced.forced
    assert forced.code is AssignmentCode.FORCED
    assert isinstance(run(allocation, user("u")), Assigned | HeldOut)
    assert {run(allocation, user(f"u{i}")).code for i in range(50)} == {
        AssignmentCode.ASSIGNED,
        AssignmentCode.HELD_OUT,
    }
    assert not forced.learnable
    assert Path().passing(equal_split(2)).propensity(forced) == 1.0
    assert force(allocation, "zzz") == NotCandidate("hero", AssignmentCode.UNKNOWN_VARIATION)
    assert isinstance(forced, Assigned)
    assert run(allocation, user("u")) != forced


# -- propensity ------------------------------------------------------------------------------------


def test_without_namespaces_propensity_is_the_holdout_share_times_the_next_answers() -> None:
    first = Allocation("first", "s1", (Variation("a", 1.0), Variation("b", 3.0)), holdout=0.1)
    second = Allocation("second", "s2", (Variation("c", 1.0), Variation("d", 1.0)), holdout=0.2)
    c = Assigned("second", "c", Strategy.SPLIT, 0.5 * (1 - 0.2))
    assert math.isclose(Path().propensity(Assigned("first", "b", Strategy.SPLIT, 0.75 * 0.9), first), 0.675)
    assert math.isclose(Path().passing(first).propensity(c, second), 0.1 * 0.5 * 0.8)
    assert math.isclose(Path().passing(first).passing(second).propensity(), 0.1 * 0.2)
    assert Path().propensity() == 1.0


def test_a_namespace_in_halves_logs_the_chance_of_each_half() -> None:
    # Held out of the first half, a subject cannot be in the second: the default is reached only so.
    first = Allocation("first", "s1", (Variation("a", 1.0),), 0.2, Namespace("ns", 0.0, 0.5))
    second = Allocation("second", "s2", (Variation("b", 1.0),), 0.0, Namespace("ns", 0.5, 1.0))
    answers = every_answer([first, second])
    assert answers == pytest.approx({("first", "a"): 0.4, ("second", "b"): 0.5, ("default", "default"): 0.1})
    seen = Counter(walk([first, second], unit) for unit in users())
    for answer, propensity in answers.items():
        assert near(seen[answer, propensity], N, propensity)


@st.composite
def placements(draw: st.DrawFn) -> list[Allocation]:
    """The experiences one placement's walk tries for a fixed context, in walk order."""
    # Wide ranges: a propensity that ignored how the ranges of one namespace exclude each other
    # would then be far from the frequencies.
    members = draw(namespace_members(grid=4))
    others = draw(st.lists(allocations(), max_size=3))
    walk = draw(st.permutations([*members, *others]))
    # Keys identify experiences in a placement; namespace n1/n2 members of `others` must stay disjoint.
    result: list[Allocation] = []
    for i, a in enumerate(walk):
        renamed = Allocation(f"x{i}", a.seed + str(i), a.variations, a.holdout, a.namespace)
        if not namespace_overlaps([*result, renamed]):
            result.append(renamed)
    return result


def walk(placement: list[Allocation], unit: Unit) -> tuple[tuple[str, str], float]:
    """What the decision walk will do with assignment: the first experience that assigns answers."""
    path = Path()
    for allocation in placement:
        outcome = run(allocation, unit)
        if isinstance(outcome, Assigned):
            return (allocation.key, outcome.variation), path.propensity(outcome, allocation)
        assert isinstance(outcome, HeldOut | NotInNamespace)
        path = path.passing(allocation)
    return ("default", "default"), path.propensity()


def every_answer(placement: list[Allocation]) -> dict[tuple[str, str], float]:
    answers: dict[tuple[str, str], float] = {}
    for i, allocation in enumerate(placement):
        path = Path(tuple(placement[:i]))
        lower = 0.0
        for key, bound in split_layout(allocation.variations):
            share = (bound - lower) * (1 - allocation.holdout_share)
            answers[allocation.key, key] = path.propensity(
                Assigned(allocation.key, key, allocation.strategy, share), allocation
            )
            lower = bound
    answers["default", "default"] = Path(tuple(placement)).propensity()
    return answers


@settings(max_examples=30)
@given(placements())
def test_propensities_of_every_answer_sum_to_one_and_match_the_frequencies(
    placement: list[Allocation],
) -> None:
    answers = every_answer(placement)
    assert math.isclose(math.fsum(answers.values()), 1.0, abs_tol=1e-9)
    total = 2_000
    seen: Counter[tuple[str, str]] = Counter()
    for unit in users(total):
        answer, propensity = walk(placement, unit)
        # The logged propensity depends on the answer and the context, never on the way there.
        assert math.isclose(propensity, answers[answer], abs_tol=1e-12)
        seen[answer] += 1
    for answer, propensity in answers.items():
        assert near(seen[answer], total, min(1.0, propensity))


# -- invalid allocations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Allocation("e", "s", ()),
        lambda: Allocation("e", "s", (Variation("a", 1.0), Variation("a", 2.0))),
        lambda: Allocation("e", "s", (Variation("a", -1.0), Variation("b", 2.0))),
        lambda: Allocation("e", "s", (Variation("a", 0.0),)),
        lambda: Allocation("e", "s", (Variation("a", math.inf),)),
        lambda: Allocation("e", "s", (Variation("", 1.0),)),
        lambda: Allocation("e", "", (Variation("a", 1.0),)),
        lambda: Allocation("e", "s", (Variation("a", 1.0),), holdout=1.5),
        lambda: Namespace("ns", 0.5, 0.5),
        lambda: Namespace("ns", 0.5, 1.2),
        lambda: Namespace("", 0.0, 1.0),
    ],
)
def test_an_invalid_allocation_is_refused_where_it_is_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (each message is the builder's own)
        build()
