"""NAS with an RL controller (Zoph & Le 2017) and random search: the policy, REINFORCE, searches with trained children."""

import itertools

import pytest
import torch

from bayesstruct.exceptions import InvalidArgumentError
from bayesstruct.nn import StructureGraph
from bayesstruct.search import Controller, RandomSearch, Reinforce, search


def two_edge_graph():
    return StructureGraph(3, {(0, 1): ["linear", "linear_tanh", "zero"], (1, 2): ["linear", "linear_relu"]},
                          input_shape=(2,), vertex_shapes={1: (4,), 2: (2,)})


def test_controller_is_a_normalised_autoregressive_distribution():
    graph = two_edge_graph()
    torch.manual_seed(0)
    c = Controller(graph, hidden=6)
    actions = torch.tensor(list(itertools.product(range(3), range(2))))
    _, logp, _ = c(actions=actions)
    logp = logp.detach()
    assert float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-12)
    # the second decision depends on the first (the LSTM state carries it)
    p_second = logp.exp().reshape(3, 2) / logp.exp().reshape(3, 2).sum(1, keepdim=True)
    assert (p_second[0] - p_second[1]).abs().max() > 1e-4
    # sampling agrees with the scored probabilities
    drawn, _, _ = c(20000)
    freq = torch.stack([(drawn == a).all(1).double().mean() for a in actions])
    assert torch.allclose(freq, logp.exp(), atol=0.015)


def test_reinforce_climbs_to_the_best_structure_of_a_known_reward_table():
    graph = two_edge_graph()
    table = {(a, b): 0.1 * i for i, (a, b) in enumerate(itertools.product(graph.edges[(0, 1)], graph.edges[(1, 2)]))}
    calls = []

    def reward(choice):
        calls.append(choice)
        return table[(choice[(0, 1)], choice[(1, 2)])]

    best = max(table, key=table.get)  # ('zero', 'linear_relu')
    r = search(graph, torch.randn(40, 2), torch.zeros(40).long(), "reinforce", reward=reward, num_updates=60,
               batch_size=8, child_steps=0, progress=False)
    assert (r.choice()[(0, 1)], r.choice()[(1, 2)]) == best
    assert r.diagnostics["controller_choice"] == {(0, 1): best[0], (1, 2): best[1]}
    assert r.gamma[(0, 1)][2] > 0.9 and r.gamma[(1, 2)][1] > 0.9
    assert len(calls) == len({tuple(c.values()) for c in calls}) <= 6  # each structure evaluated once (cache)
    means = [h["mean_reward"] for h in r.history]
    assert means[0] < 0.4 and sum(means[-10:]) / 10 > 0.49  # from exploring to (almost) always the best


def test_reinforce_with_trained_children_finds_the_nonlinear_edge(xor):
    graph, x, y = xor
    r = search(graph, x, y, "reinforce", num_updates=10, batch_size=4, progress=False)
    assert r.choice() == {(0, 1): "linear_tanh"}, r
    assert r.val_accuracy == pytest.approx(r.diagnostics["best_reward"]) and r.val_accuracy > 0.85
    assert r.diagnostics["num_evaluated"] <= 3


def test_bad_reward_and_options_are_refused(xor):
    graph, x, y = xor
    with pytest.raises(InvalidArgumentError, match="`reward` returned nan"):
        search(graph, x, y, "reinforce", reward=lambda c: float("nan"), num_updates=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="`reward` must return a number"):
        search(graph, x, y, "reinforce", reward=lambda c: "good", num_updates=1, progress=False)
    for kwargs, match in [(dict(reward=3), "`reward`"), (dict(reward="auc"), "`reward`"), (dict(baseline_decay=1.0), "`baseline_decay`"),
                          (dict(batch_size=0), "`batch_size`"), (dict(num_updates=0), "`num_updates`")]:
        with pytest.raises(InvalidArgumentError, match=match):
            Reinforce(**kwargs)


def test_log_likelihood_reward_is_minus_the_validation_nll(xor):
    graph, x, y = xor
    r = search(graph, x, y, "reinforce", reward="log-likelihood", num_updates=3, batch_size=3, progress=False)
    assert r.diagnostics["best_reward"] == pytest.approx(-r.val_loss)
    assert max(r.diagnostics["rewards"].values()) == pytest.approx(-r.val_loss)


def test_random_search_trains_distinct_structures_and_keeps_the_best():
    graph = two_edge_graph()
    table = {(a, b): 0.1 * i for i, (a, b) in enumerate(itertools.product(graph.edges[(0, 1)], graph.edges[(1, 2)]))}
    calls = []

    def reward(choice):
        calls.append((choice[(0, 1)], choice[(1, 2)]))
        return table[calls[-1]]

    r = search(graph, torch.randn(40, 2), torch.zeros(40).long(), "random", num_samples=4, reward=reward,
               child_steps=0, progress=False)
    assert len(calls) == len(set(calls)) == 4  # without replacement
    assert (r.choice()[(0, 1)], r.choice()[(1, 2)]) == max(calls, key=table.get)
    assert [h["best_reward"] for h in r.history] == [max(table[c] for c in calls[:k + 1]) for k in range(4)]
    for t, e in enumerate([(0, 1), (1, 2)]):  # gamma: each edge's share of the structures drawn
        names = graph.edges[e]
        assert r.gamma[e].tolist() == [sum(c[t] == n for c in calls) / 4 for n in names]
    with pytest.warns(UserWarning, match="`num_samples` = 100 exceeds the 6 structures of the graph"):
        everything = search(graph, torch.randn(40, 2), torch.zeros(40).long(), "random", num_samples=100,
                            reward=reward, child_steps=0, progress=False)
    assert everything.diagnostics["num_evaluated"] == 6 and everything.choice() == {(0, 1): "zero", (1, 2): "linear_relu"}
    with pytest.raises(InvalidArgumentError, match="`num_samples`"):
        RandomSearch(num_samples=0)


def test_random_search_draws_distinct_structures_from_a_space_too_large_to_list():
    ops = ["linear_relu", "linear_tanh", "identity", "zero"]
    edges = {(k, k + 1): ops for k in range(7)}  # 4^7 = 16,384 structures
    edges[(7, 8)] = "linear"
    graph = StructureGraph(9, edges, input_shape=(2,), vertex_shapes={**{k: (2,) for k in range(1, 8)}, 8: (2,)})
    seen = []
    r = search(graph, torch.randn(20, 2), torch.zeros(20).long(), "random", num_samples=50, child_steps=0,
               reward=lambda c: seen.append(tuple(c.values())) or float(sum(n == "identity" for n in c.values())),
               progress=False)
    assert len(seen) == len(set(seen)) == 50 and r.diagnostics["num_structures"] == 4 ** 7
    assert r.diagnostics["best_reward"] == max(sum(n == "identity" for n in s) for s in seen)


def test_evidence_reward_is_the_laplace_log_evidence_on_the_training_split(xor_graph):
    import bayesstruct
    from bayesstruct.families import NetworkFamily
    from bayesstruct.search import prepare_data

    # no `linear` primitive: its rotation symmetry makes the Laplace evidence unreliable (see Reinforce)
    graph = xor_graph(primitives=["linear_tanh", "linear_sigmoid", "zero"])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 2, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    r = search(graph, x, y, "random", num_samples=3, reward="evidence", child_steps=50, progress=False)
    assert r.diagnostics["reward"] == "evidence" and r.choice()[(0, 1)] != "zero"
    data = prepare_data(graph, x, y)
    family = NetworkFamily(graph)
    refs = {}
    for name in graph.edges[(0, 1)]:
        refs[name] = bayesstruct.log_evidence(family.bind({"edge_0_1": name, "edge_1_2": "linear"}), data.x_train,
                                              data.y_train, method="laplace").log_evidence
        assert r.diagnostics["rewards"][f"0->1: {name}"] == pytest.approx(refs[name], rel=1e-6)
    assert r.choice()[(0, 1)] == max(refs, key=refs.get)
    # a hidden layer that can fit XOR beats the empty structure (chance) by tens of nats
    assert max(refs.values()) > refs["zero"] + 20
    with pytest.raises(InvalidArgumentError, match="`evidence` takes the keys"):
        Reinforce(reward="evidence", evidence={"estimator": "smc"})


def test_rewards_and_controller_choice_are_keyed_readably_whatever_the_reward(xor):
    import json

    from bayesstruct.search import structure_name

    graph = two_edge_graph()
    x, y = torch.randn(40, 2), torch.zeros(40).long()
    names = {structure_name({(0, 1): a, (1, 2): b}) for a in graph.edges[(0, 1)] for b in graph.edges[(1, 2)]}
    assert "0->1: linear_tanh, 1->2: linear_relu" in names and len(names) == 6

    def table(c):
        return float(graph.edges[(0, 1)].index(c[(0, 1)]) + 10 * graph.edges[(1, 2)].index(c[(1, 2)]))

    runs = {
        "custom": search(graph, x, y, "reinforce", reward=table, num_updates=3, batch_size=4, child_steps=0,
                         progress=False),
        "accuracy": search(graph, x, y, "reinforce", num_updates=2, batch_size=3, child_steps=1, progress=False),
        "random": search(graph, x, y, "random", reward=table, num_samples=6, child_steps=0, progress=False),
    }
    for kind, r in runs.items():
        rewards = r.diagnostics["rewards"]
        assert rewards and set(rewards) <= names, (kind, rewards)  # not '(2, 0)': index tuples as strings
        assert len(rewards) == r.diagnostics["num_evaluated"]
        if kind != "accuracy":  # each key names the structure its reward belongs to
            for key, value in rewards.items():
                a, b = (part.split(": ")[1] for part in key.split(", "))
                assert value == table({(0, 1): a, (1, 2): b})
        assert r.diagnostics["best_reward"] == max(rewards.values())
        # the JSON form keeps the keys, and writes the choices' edges as "j->k"
        d = json.loads(r.to_json())["diagnostics"]
        assert d["rewards"] == rewards
        if kind != "random":
            # controller_choice has the key form of result.choice() for a built-in and a custom reward alike
            assert set(r.diagnostics["controller_choice"]) == set(r.choice()) == {(0, 1), (1, 2)}
            assert set(d["controller_choice"]) == set(json.loads(r.to_json())["choice"]) == {"0->1", "1->2"}
    assert runs["random"].diagnostics["rewards"].keys() == names  # random search trained all six


@pytest.mark.parametrize("baseline", [None, 0.25])
def test_policy_loss_is_unbiased_on_the_first_update_and_after(baseline):
    """The exact expectation of the surrogate's gradient over every batch of m = 2 draws is
    -grad J, J = sum_a P(a) R(a), to round-off: for the moving average (a fixed b) and for the
    first update's leave-one-out baseline. The batch mean including R_k gives half of it."""
    from bayesstruct.search.reinforce import policy_loss

    graph = two_edge_graph()
    torch.manual_seed(0)
    c = Controller(graph, hidden=5).double()
    actions = torch.tensor(list(itertools.product(range(3), range(2))))
    R = torch.tensor([0.0, 0.3, -0.2, 0.9, 0.4, 0.1], dtype=torch.float64)
    _, logp, _ = c(actions=actions)
    p = logp.exp().detach()
    params = list(c.parameters())

    def flat_grad(f):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(f, params, retain_graph=True)])

    grad_J = flat_grad((logp.exp() * R).sum())
    pairs = list(itertools.product(range(6), range(6)))
    expected = sum(p[i] * p[j] * policy_loss(R[[i, j]], logp[[i, j]], baseline) for i, j in pairs)
    assert torch.allclose(flat_grad(expected), -grad_J, atol=1e-12, rtol=1e-10)
    assert grad_J.abs().max() > 1e-3  # a non-trivial gradient
    if baseline is None:  # the old first-update baseline, the batch mean with R_k in it, is biased
        biased = sum(p[i] * p[j] * -((R[[i, j]] - R[[i, j]].mean()) * logp[[i, j]]).mean() for i, j in pairs)
        assert torch.allclose(flat_grad(biased), -0.5 * grad_J, atol=1e-12, rtol=1e-10)
    one = policy_loss(R[[3]], logp[[3]], None)  # m = 1: b = 0, so the first update still moves the policy
    assert torch.allclose(flat_grad(one), -R[3] * flat_grad(logp[3]))
    for bad in ([0.1, 0.2], R[:0], R[:2].reshape(1, 2)):
        with pytest.raises(InvalidArgumentError, match="`rewards` and `log_prob`"):
            policy_loss(bad, logp[:2], None)


def test_entropy_surrogate_gradient_is_the_gradient_of_the_structure_entropy():
    """Exact expectation over every structure of a 6-structure controller: E_P[grad surrogate] equals
    grad H(P), H = -sum_a P(a) log P(a), to round-off; the pathwise term alone does not."""
    from bayesstruct.search.reinforce import entropy_surrogate

    torch.manual_seed(0)
    c = Controller(two_edge_graph(), hidden=5).double()
    with torch.no_grad():
        for p in c.parameters():
            p.mul_(3.0)  # a peaked controller, where the prefix distribution matters
    actions = torch.tensor(list(itertools.product(range(3), range(2))))
    _, logp, ent = c(actions=actions)
    P = logp.exp()
    params = list(c.parameters())

    def flat_grad(f):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(f, params, retain_graph=True)])

    H = -(P * logp).sum()
    torch.testing.assert_close((P.detach() * ent).sum(), H)  # the chain rule of entropy: E[h] = H
    grad_H = flat_grad(H)
    expected = sum(P[i].detach() * entropy_surrogate(ent[[i]], logp[[i]]) for i in range(len(actions)))
    torch.testing.assert_close(flat_grad(expected), grad_H, atol=1e-12, rtol=1e-10)
    pathwise = flat_grad((P.detach() * ent).sum())
    assert (pathwise - grad_H).norm() > 0.05 * grad_H.norm()
    for bad in ([0.1, 0.2], ent[:0], ent[:2].reshape(1, 2)):
        with pytest.raises(InvalidArgumentError, match="`entropy` and `log_prob`"):
            entropy_surrogate(bad, logp[:2])
