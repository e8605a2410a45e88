//! Grouped bar charts as SVG (plotters): one group per workload, one bar per server.

use plotters::prelude::*;
use plotters::style::text_anchor;
use std::path::Path;

/// One chart: `values[series][category]`, `None` where a series has no figure.
pub struct BarChart<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// Label of the value axis, with its unit.
    pub y_label: &'a str,
    /// Names of the groups along the x axis.
    pub categories: &'a [String],
    /// Names of the bars in each group (the legend).
    pub series: &'a [String],
    /// The bar heights.
    pub values: &'a [Vec<Option<f64>>],
}

/// Pixel size of every chart: wide enough for seven groups of three labelled bars.
const CHART_SIZE: (u32, u32) = (960, 480);

/// Colours of the series, in order: Redis first (grey), then Ember's modes.
const SERIES_COLORS: [RGBColor; 5] = [
    RGBColor(120, 120, 120),
    RGBColor(214, 96, 36),
    RGBColor(240, 170, 40),
    RGBColor(60, 110, 180),
    RGBColor(90, 160, 90),
];

/// Draws `chart` into an SVG file at `path`.
///
/// # Errors
/// Returns a message when the file cannot be written or the data has no positive value.
pub fn write_bar_chart(path: &Path, chart: &BarChart<'_>) -> Result<(), String> {
    draw(path, chart).map_err(|error| format!("cannot draw {}: {error}", path.display()))
}

fn draw(path: &Path, chart: &BarChart<'_>) -> Result<(), Box<dyn std::error::Error>> {
    let maximum = chart
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .filter(|value| value.is_finite())
        .fold(0.0f64, f64::max);
    if maximum <= 0.0 {
        return Err("no positive value to plot".into());
    }
    let root = SVGBackend::new(path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let category_count = chart.categories.len();
    let mut context = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..category_count as f64, 0f64..maximum * 1.15)?;
    context
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(chart.y_label)
        .y_label_formatter(&|value| short_number(*value))
        .draw()?;
    // Bars take 80% of each group's width, split evenly among the series.
    let bar_width = 0.8 / chart.series.len().max(1) as f64;
    for (series_index, name) in chart.series.iter().enumerate() {
        let color = SERIES_COLORS[series_index % SERIES_COLORS.len()];
        let bars = chart.values[series_index]
            .iter()
            .enumerate()
            .filter_map(|(category, value)| value.map(|value| (category, value)))
            .map(move |(category, value)| {
                let left = category as f64 + 0.1 + bar_width * series_index as f64;
                Rectangle::new(
                    [(left, 0.0), (left + bar_width * 0.92, value)],
                    color.filled(),
                )
            });
        context
            .draw_series(bars)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let labels = chart.values[series_index]
            .iter()
            .enumerate()
            .filter_map(|(category, value)| value.map(|value| (category, value)))
            .map(move |(category, value)| {
                let left = category as f64 + 0.1 + bar_width * series_index as f64;
                // Anchored by its bottom edge just above the bar.
                let style = TextStyle::from(("sans-serif", 11)).pos(text_anchor::Pos::new(
                    text_anchor::HPos::Left,
                    text_anchor::VPos::Bottom,
                ));
                Text::new(short_number(value), (left, value + maximum * 0.01), style)
            });
        context.draw_series(labels)?;
    }
    context
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    // Group names under the axis, centred on each group (pixel positions from the chart).
    for (category, name) in chart.categories.iter().enumerate() {
        let (x, y) = context.backend_coord(&(category as f64 + 0.5, 0.0));
        let style = TextStyle::from(("sans-serif", 14)).pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Top,
        ));
        root.draw(&Text::new(name.as_str(), (x, y + 8), style))?;
    }
    root.present()?;
    Ok(())
}

/// 1234567 -> "1.23M", 45600 -> "45.6k", 7.25 -> "7.25".
pub fn short_number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude == 0.0 {
        "0".to_string()
    } else if magnitude >= 1e6 {
        format!("{:.3}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_label() {
        let directory =
            std::env::temp_dir().join(format!("ember-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("chart.svg");
        let categories = vec!["get-p1".to_string(), "set-p16".to_string()];
        let series = vec!["redis".to_string(), "ember".to_string()];
        let values = vec![
            vec![Some(120_000.0), Some(900_000.0)],
            vec![Some(250_000.0), None],
        ];
        let chart = BarChart {
            title: "throughput",
            y_label: "ops/s",
            categories: &categories,
            series: &series,
            values: &values,
        };
        write_bar_chart(&path, &chart).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in [
            "<svg",
            "throughput",
            "get-p1",
            "set-p16",
            "redis",
            "ember",
            "900.0k",
        ] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        std::fs::remove_dir_all(&directory).unwrap();
        let empty = vec![vec![None, None], vec![None, None]];
        let chart = BarChart {
            values: &empty,
            ..chart
        };
        assert!(write_bar_chart(&path, &chart).is_err());
    }

    #[test]
    fn shortens_numbers() {
        assert_eq!(short_number(1_234_567.0), "1.235M");
        assert_eq!(short_number(45_600.0), "45.6k");
        assert_eq!(short_number(512.4), "512");
        assert_eq!(short_number(7.25), "7.25");
        assert_eq!(short_number(0.0), "0");
    }
}
