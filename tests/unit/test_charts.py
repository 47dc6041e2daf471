"""The report's SVG charts: well-formed, labelled, scaled, escaped, and free of any URL."""

import re
import xml.etree.ElementTree as ET

import pytest

from api_service.charts import HEIGHT, Series, line_chart, nice_ticks, stacked_bar_chart

LABELS = ["Nov 27", "Nov 28", "Nov 29"]


def _bars():
    return stacked_bar_chart(
        "checks",
        "Check results per day",
        LABELS,
        [Series("passed", [3, 0, 5], "#2f855a"), Series("failed", [1, 0, 0], "#c53030")],
        x_label="Day (UTC)",
        y_label="Check evaluations",
    )


def _texts(svg: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in svg.iter("text") if t.get("class") == cls]


@pytest.mark.parametrize(
    ("maximum", "integer", "ticks"),
    [
        (7, False, [0, 2, 4, 6, 8]),
        (100, False, [0, 20, 40, 60, 80, 100]),
        (2.3, False, [0, 0.5, 1, 1.5, 2, 2.5]),
        (0.04, False, [0, 0.01, 0.02, 0.03, 0.04]),
        (3, True, [0, 1, 2, 3]),
        (1, True, [0, 1]),
        (0, False, [0, 1]),
        (float("nan"), False, [0, 1]),
    ],
)
def test_nice_ticks(maximum, integer, ticks):
    assert nice_ticks(maximum, integer=integer) == ticks


def test_bar_chart_has_title_axis_labels_and_legend():
    svg = ET.fromstring(str(_bars()))
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "checks-title checks-desc"
    assert svg.find("title").text == "Check results per day"
    assert _texts(svg, "chart-title") == ["Check results per day"]
    assert _texts(svg, "axis-label") == ["Day (UTC)", "Check evaluations"]
    assert _texts(svg, "legend-label") == ["passed", "failed"]
    assert [t for t in _texts(svg, "tick") if t in LABELS] == LABELS
    assert "Nov 27: passed 3, failed 1" in svg.find("desc").text


def test_bars_are_stacked_to_scale_and_zero_values_draw_nothing():
    svg = ET.fromstring(str(_bars()))
    bars = [r for r in svg.iter("rect") if r.get("class") == "bar"]
    assert [b.find("title").text for b in bars] == [
        "Nov 27: passed 3",
        "Nov 27: failed 1",
        "Nov 29: passed 5",
    ]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(3 * heights[1], abs=0.2)
    # stacked: the failed bar sits right on top of the passed one of its day
    assert float(bars[1].get("y")) + heights[1] == pytest.approx(float(bars[0].get("y")), abs=0.1)
    # the top tick (5) reaches the top of the plot
    assert float(bars[2].get("y")) == pytest.approx(70, abs=0.1)
    assert all(float(b.get("y")) + h <= HEIGHT for b, h in zip(bars, heights, strict=True))
    assert {b.get("fill") for b in bars} == {"#2f855a", "#c53030"}


def test_line_chart_draws_a_path_per_series_with_gaps():
    svg = ET.fromstring(
        str(
            line_chart(
                "held",
                "Rows held back",
                LABELS,
                [Series("curated.fact_flight", [4, None, 6], "#2b6cb0"),
                 Series("curated.flight_passenger_load", [0, 1, 2], "#d69e2e")],
                x_label="Day (UTC)",
                y_label="Rows held back",
                integer=True,
            )
        )
    )  # fmt: skip
    paths = [p.get("d") for p in svg.iter("path") if p.get("class") == "line"]
    assert len(paths) == 2
    assert paths[0].count("M") == 2 and "L" not in paths[0]  # None breaks the line
    assert paths[1].count("M") == 1 and paths[1].count("L") == 2
    points = [c.find("title").text for c in svg.iter("circle")]
    assert "Nov 29: curated.fact_flight 6" in points and len(points) == 5
    assert _texts(svg, "legend-label") == ["curated.fact_flight", "curated.flight_passenger_load"]
    assert _texts(svg, "axis-label") == ["Day (UTC)", "Rows held back"]


def test_units_appear_in_tooltips():
    svg = line_chart(
        "pct", "Share", ["d"], [Series("t", [12.5], "#000")], x_label="x", y_label="y", unit="%"
    )
    assert "<title>d: t 12.5%</title>" in str(svg)


def test_text_is_escaped():
    svg = str(
        stacked_bar_chart(
            'x"><script>',
            "<b>title</b>",
            ["<d>"],
            [Series('a & "b"', [1], '"red')],
            x_label="<x>",
            y_label="<y>",
        )
    )
    ET.fromstring(svg)  # still well-formed
    assert "<script>" not in svg and "<b>" not in svg and "<d>" not in svg
    assert "&lt;b&gt;title&lt;/b&gt;" in svg and "a &amp; &#34;b&#34;" in svg


def test_no_data_is_said_not_drawn():
    for svg in (
        stacked_bar_chart("a", "A", [], [Series("s", [], "#000")], x_label="x", y_label="y"),
        line_chart("b", "B", [], [], x_label="x", y_label="y"),
        stacked_bar_chart(
            "c", "C", LABELS, [Series("s", [0, 0, 0], "#000")], x_label="x", y_label="y"
        ),
        line_chart("d", "D", LABELS, [Series("s", [None] * 3, "#000")], x_label="x", y_label="y"),
    ):
        root = ET.fromstring(str(svg))
        assert _texts(root, "no-data") == ["No data in this period"]
        assert not [e for e in root.iter() if e.get("class") in ("bar", "line")]


def test_many_days_get_thinned_labels():
    labels = [f"D{i:02d}" for i in range(90)]
    svg = ET.fromstring(
        str(
            stacked_bar_chart(
                "many", "M", labels, [Series("s", [1] * 90, "#000")], x_label="x", y_label="y"
            )
        )
    )
    shown = [t for t in _texts(svg, "tick") if t.startswith("D")]
    assert shown[0] == "D00" and 5 <= len(shown) <= 15


def test_mismatched_series_are_refused():
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        line_chart("m", "M", LABELS, [Series("s", [1, 2], "#000")], x_label="x", y_label="y")


def test_charts_reference_nothing():
    text = str(_bars())
    assert not re.search(r"(?i)https?:|//|url\(|href|style=", text)
