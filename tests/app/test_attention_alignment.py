"""The attention request's `alignment` field: links read off one cross map, checked against the map the same
response returns, part of the cache key, refused with what to fix."""

from __future__ import annotations

import json

import pytest

from tests.app.conftest import attention, make_client
from tests.conftest import write_model_dir

SOURCE, TARGET = "i like tea .", "私 は お 茶 が 好き 。"


def cross_rows(body: dict, layer: int, head) -> list[list[float]]:
    """The response's own cross map of (layer, head or mean), rows target tokens, columns source tokens."""
    heads = body["attention"]["cross"]["weights"][layer]
    if head == "mean":
        return [[sum(h[q][k] for h in heads) / len(heads) for k in range(len(heads[0][0]))] for q in range(len(heads[0]))]
    return heads[head]


def words(tokens: list[dict]) -> list[int]:
    return [i for i, t in enumerate(tokens) if not t["special"]]


def test_argmax_links_each_target_token_to_its_most_attended_source_token(client):
    body = attention(client, source=SOURCE, target=TARGET, alignment={"layer": 1, "head": 2})
    alignment = body["alignment"]
    assert (alignment["layer"], alignment["head"], alignment["threshold"], alignment["shift_att"]) == (1, 2, None, False)
    assert alignment["method"] == "weights"
    rows = cross_rows(body, 1, 2)
    source = words(body["source_tokens"])
    assert [link["target"] for link in alignment["links"]] == words(body["target_tokens"])  # one each, </s> none
    for link in alignment["links"]:
        row = rows[link["target"]]
        assert link["source"] == max(source, key=lambda j: row[j])
        assert link["weight"] == pytest.approx(row[link["source"]] / sum(row[j] for j in source), abs=2e-3)


def test_shift_att_reads_the_next_row(client):
    body = attention(client, source=SOURCE, target=TARGET, alignment={"layer": 0, "head": "mean", "shift_att": True})
    rows = cross_rows(body, 0, "mean")
    source = words(body["source_tokens"])
    for link in body["alignment"]["links"]:
        assert link["source"] == max(source, key=lambda j: rows[link["target"] + 1][j])


def test_a_threshold_keeps_every_link_over_its_share(client):
    body = attention(client, source=SOURCE, target=TARGET, alignment={"layer": 1, "threshold": 0.2})
    rows = cross_rows(body, 1, "mean")
    source = words(body["source_tokens"])
    expected = set()
    for t in words(body["target_tokens"]):
        total = sum(rows[t][j] for j in source)
        expected |= {(j, t) for j in source if rows[t][j] / total > 0.2 + 2e-3}
    got = {(link["source"], link["target"]) for link in body["alignment"]["links"]}
    assert expected <= got
    assert all(link["weight"] > 0.2 for link in body["alignment"]["links"])


def test_without_alignment_there_is_none_and_a_free_translation_is_aligned_too(client):
    assert attention(client, source=SOURCE)["alignment"] is None
    free = attention(client, source=SOURCE, alignment={})
    assert len(free["alignment"]["links"]) == len(words(free["target_tokens"]))


def test_the_layer_defaults_to_the_model_cards_best_alignment_layer(tmp_path):
    checkpoint = write_model_dir(tmp_path)
    card = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    table = {"layers": [], "best": {"layer": 1, "head": 3, "aer": 0.4}, "best_mean": {"layer": 0, "aer": 0.5}}
    card["alignment_aer"] = {"gold": {"sentences": 100, "methods": {"weights": table}}}
    checkpoint.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    with make_client(tmp_path) as client:
        assert attention(client, source=SOURCE, alignment={})["alignment"]["layer"] == 0
        info = client.get("/api/v1/models/tiny").json()["alignment_layer"]
    assert info["layer"] == 0 and info["measured"]
    assert info["note"] == "lowest AER of the mean of heads against the gold alignments of 100 test sentences (0.500)"
    assert info["by_method"]["weights"] == {
        "reference": "gold", "layer": 1, "head": 3, "aer": 0.4, "mean_layer": 0, "mean_aer": 0.5
    }  # fmt: skip


def test_a_card_with_only_the_older_dev_figure_opens_on_its_best_layer(tmp_path):
    checkpoint = write_model_dir(tmp_path)
    card = json.loads(checkpoint.with_suffix(".json").read_text(encoding="utf-8"))
    card["alignment_by_layer"] = {"split": "dev", "layers": [{"layer": 0, "aer": 0.5}, {"layer": 1, "aer": 0.7}], "best_layer": 0}
    checkpoint.with_suffix(".json").write_text(json.dumps(card), encoding="utf-8")
    with make_client(tmp_path) as client:
        info = client.get("/api/v1/models/tiny").json()["alignment_layer"]
    assert info == {"layer": 0, "measured": True, "note": "lowest AER on dev against silver alignments (0.500)", "by_method": {}}


def test_the_alignment_is_part_of_the_cache_key_once_resolved(client):
    cache = client.app.state.runner.cache
    attention(client, source=SOURCE, alignment={})
    attention(client, source=SOURCE, alignment={"layer": 1, "head": "mean", "threshold": None, "shift_att": False})
    assert len(cache) == 1  # the tiny model's alignment layer is its last: the same computation
    attention(client, source=SOURCE, alignment={"layer": 0})
    attention(client, source=SOURCE, alignment={"layer": 1, "shift_att": True})
    attention(client, source=SOURCE)
    assert len(cache) == 4


def test_every_method_is_aligned_from_the_maps_it_returns(client):
    norms = attention(client, source=SOURCE, target=TARGET, method="norms", alignment={"layer": 0, "head": "layer"})
    rows = norms["attention"]["cross"]["layer_weights"][0]  # ‖Σ_h α f_h(x)‖, rows not normalised
    source = words(norms["source_tokens"])
    assert norms["alignment"]["method"] == "norms"
    for link in norms["alignment"]["links"]:
        row = rows[link["target"]]
        assert link["source"] == max(source, key=lambda j: row[j])
        assert link["weight"] == pytest.approx(row[link["source"]] / sum(row[j] for j in source), abs=2e-3)
    alti = attention(client, source=SOURCE, target=TARGET, method="alti", alignment={})
    assert (alti["alignment"]["head"], alti["alignment"]["layer"]) == ("layer", 1)  # alti has no heads: its block maps
    composed = attention(client, source=SOURCE, target=TARGET, method="alti", alignment={"head": "contributions"})
    assert composed["alignment"]["layer"] is None
    contributions = composed["contributions"]["source"]
    for link in composed["alignment"]["links"]:
        assert link["source"] == max(source, key=lambda j: contributions[link["target"]][j])
    saliency = {"algorithm": "input_x_gradient"}
    body = attention(client, source=SOURCE, target=TARGET, method="saliency", saliency=saliency, alignment={})
    assert (body["alignment"]["head"], body["alignment"]["layer"]) == ("contributions", None)
    assert len(body["alignment"]["links"]) == len(words(body["target_tokens"]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"alignment": {"head": "layer"}}, "method weights has no 'layer' map to align: alignment.head can be mean or a head 0"),
        ({"method": "alti", "alignment": {"head": 0}}, "method alti has no 0 map to align: alignment.head can be layer or"),
        ({"method": "alti", "alignment": {"head": "contributions", "layer": 0}}, "contributions compose every layer"),
    ],
)
def test_a_map_the_method_lacks_is_refused_naming_those_it_has(client, body, message):
    response = client.post("/api/v1/attention", json={"source": SOURCE, **body})
    assert response.status_code == 422
    assert message in response.json()["detail"]
    norms = client.post("/api/v1/attention", json={"source": SOURCE, "method": "norms", "alignment": {"head": "contributions"}})
    assert "alignment.head can be mean or a head 0 to 3 or layer" in norms.json()["detail"]


@pytest.mark.parametrize(
    ("alignment", "message"),
    [
        ({"layer": 2}, "alignment.layer 2 out of range: valid cross layers are 0 to 1"),
        ({"head": 4}, "alignment.head 4 out of range: valid cross heads are 0 to 3, or mean"),
        ({"head": -1}, "alignment.head -1 out of range"),
        ({"layer": -1}, "alignment.layer: Input should be greater than or equal to 0"),
        ({"threshold": 1.0}, "alignment.threshold: Input should be less than 1"),
        ({"threshold": 0}, "alignment.threshold: Input should be greater than 0"),
        ({"head": "max"}, "alignment.head"),
        ({"shift": True}, "alignment.shift: Extra inputs are not permitted"),
    ],
)
def test_a_bad_alignment_is_refused_naming_the_field(client, alignment, message):
    response = client.post("/api/v1/attention", json={"source": SOURCE, "alignment": alignment})
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_the_rnn_model_is_aligned_from_its_one_attention(tmp_path):
    write_model_dir(tmp_path, "rnn", arch="rnn")
    with make_client(tmp_path) as client:
        body = attention(client, source=SOURCE, target=TARGET, alignment={"head": 0})
        assert body["alignment"]["layer"] == 0
        assert len(body["alignment"]["links"]) == len(words(body["target_tokens"]))
        refused = client.post("/api/v1/attention", json={"source": SOURCE, "alignment": {"head": 1}})
    assert refused.json()["detail"] == "alignment.head 1 out of range: valid cross heads are 0 to 0, or mean"
