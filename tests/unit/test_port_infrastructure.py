"""Port infrastructure file: the bundled Seine data loads, and invalid files name what is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stream.core.port.infrastructure import InfrastructureError, load, parse


def test_bundled_file_has_the_gustave_flaubert_bridge_and_le_havre_terminals() -> None:
    """The default file holds the Rouen lift bridge near 49.445 N 1.064 E with approaches, and terminals."""
    infra = load()
    bridge = infra.structures["FRURO-GUSTAVE-FLAUBERT"]
    lons = [p[0] for p in bridge.road["coordinates"]]
    lats = [p[1] for p in bridge.road["coordinates"]]
    assert min(lons) < 1.0652 < max(lons) and min(lats) < 49.4446 < max(lats)
    assert bridge.event_kind == "bridge_lift" and len(bridge.approaches) == 2
    assert bridge.lead_minutes + bridge.closure_minutes == 60
    assert all(a.coordinates[-1] == (1.0652, 49.4446) for a in bridge.approaches)
    assert {t.locode for t in infra.terminals.values()} == {"FRLEH"}
    assert {"FRLEH-TDF", "FRLEH-TPO", "FRLEH-TNMSC"} <= set(infra.terminals)
    assert all(s.note for s in infra.structures.values())


def _doc() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[1.0, 49.0], [1.001, 49.001]]},
                "properties": {"type": "bridge", "id": "B", "name": "B", "opening": {"min_length_m": 50}},
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[0.99, 49.0], [1.0, 49.0]]},
                "properties": {"type": "approach", "id": "A", "structure": "B"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [0.1, 49.46]},
                "properties": {"type": "terminal", "id": "T", "name": "T", "locode": "FRLEH"},
            },
        ],
    }


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("features", 0, "properties", "type"), "ferry", "features[0].properties.type"),
        (("features", 0, "properties", "lead_minutes"), -5, "features[0].properties.lead_minutes"),
        (("features", 0, "properties", "opening"), {}, "features[0].properties.opening"),
        (("features", 0, "properties", "name"), "", "features[0].properties.name"),
        (("features", 1, "properties", "structure"), "nowhere", "structure 'nowhere' is not defined"),
        (("features", 1, "geometry", "coordinates"), [[0.99, 49.0]], "features[1].geometry"),
        (("features", 2, "properties", "locode"), "Le Havre", "features[2].properties.locode"),
        (("features", 2, "geometry", "coordinates"), [200, 49], "features[2].geometry"),
    ],
)
def test_invalid_files_name_the_field(path: tuple[Any, ...], value: Any, message: str) -> None:
    """Each kind of mistake is reported with the feature and property it concerns."""
    doc = copy.deepcopy(_doc())
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InfrastructureError) as caught:
        parse(doc)
    assert any(message in p for p in caught.value.problems), caught.value.problems


def test_valid_document_defaults() -> None:
    """Defaults apply: 15 min lead, 30 min closure, 150 m half width, 45 degrees, 2 knots."""
    infra = parse(_doc())
    bridge = infra.structures["B"]
    (approach,) = bridge.approaches
    assert (bridge.lead_minutes, bridge.closure_minutes) == (15.0, 30.0)
    assert (approach.half_width_m, approach.course_tolerance_deg, approach.min_speed_kn) == (150.0, 45.0, 2.0)
    assert 700 < approach.length_m < 750


def test_not_a_feature_collection() -> None:
    """A file that is not a FeatureCollection is refused at once."""
    with pytest.raises(InfrastructureError, match="FeatureCollection"):
        parse({"type": "Feature"})


def test_unreadable_file(tmp_path: Any) -> None:
    """A missing or non-JSON file is an InfrastructureError naming the file."""
    bad = tmp_path / "infra.geojson"
    bad.write_text("{nope")
    with pytest.raises(InfrastructureError, match="infra.geojson"):
        load(bad)
