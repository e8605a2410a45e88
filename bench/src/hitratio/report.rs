//! Hit-ratio tables (markdown) and the SVG plot.

use super::Row;
use plotters::prelude::*;
use std::path::Path;

/// The distinct values of `key` over `rows`, in first-seen order.
fn distinct<T: PartialEq + Clone>(rows: &[Row], key: impl Fn(&Row) -> T) -> Vec<T> {
    let mut seen: Vec<T> = Vec::new();
    for row in rows {
        let value = key(row);
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

fn size_label(size_percent: f64) -> String {
    format!("{size_percent}%")
}

fn row_label(row: &Row) -> String {
    if row.source == "server" {
        format!("{} (server)", row.policy)
    } else {
        row.policy.clone()
    }
}

/// Hit ratios in percent: one table per trace, a row per policy, a column per size; the best
/// in-process figure of each column in bold.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut text = String::new();
    for trace in distinct(rows, |row| row.trace.clone()) {
        let of_trace: Vec<&Row> = rows.iter().filter(|row| row.trace == trace).collect();
        let owned: Vec<Row> = of_trace.iter().map(|row| (*row).clone()).collect();
        let mut sizes = distinct(&owned, |row| row.size_percent);
        sizes.sort_by(f64::total_cmp);
        let requests = of_trace.first().map_or(0, |row| row.requests);
        text.push_str(&format!(
            "\n**{trace}** ({requests} requests; hit ratio in %, by cache size in % of the working set)\n\n| policy |"
        ));
        for &size in &sizes {
            text.push_str(&format!(" {} |", size_label(size)));
        }
        text.push_str("\n|---|");
        text.push_str(&"---:|".repeat(sizes.len()));
        text.push('\n');
        let best: Vec<f64> = sizes
            .iter()
            .map(|&size| {
                of_trace
                    .iter()
                    .filter(|row| row.size_percent == size && row.source == "in-process")
                    .map(|row| row.hit_ratio())
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        for label in distinct(&owned, row_label) {
            text.push_str(&format!("| {label} |"));
            for (column, &size) in sizes.iter().enumerate() {
                let cell = of_trace
                    .iter()
                    .find(|row| row_label(row) == label && row.size_percent == size);
                match cell {
                    Some(row) => {
                        let figure = format!("{:.2}", row.hit_ratio() * 100.0);
                        let is_best = row.source == "in-process" && row.hit_ratio() >= best[column];
                        if is_best {
                            text.push_str(&format!(" **{figure}** |"));
                        } else {
                            text.push_str(&format!(" {figure} |"));
                        }
                    }
                    None => text.push_str(" |"),
                }
            }
            text.push('\n');
        }
    }
    text
}

/// Points of hit ratio (percent) within which a policy counts as matching the best one.
const NEAR_BEST_POINTS: f64 = 1.0;

/// One line per in-process policy over every (trace, size) cell: its mean hit ratio, the cells
/// where it is within `NEAR_BEST_POINTS` of the best policy, and its largest gap to the best.
/// This is what picks a default policy.
pub fn summary_table(rows: &[Row]) -> String {
    let simulated: Vec<Row> = rows
        .iter()
        .filter(|row| row.source == "in-process")
        .cloned()
        .collect();
    if simulated.is_empty() {
        return String::new();
    }
    let cells = distinct(&simulated, |row| {
        (row.trace.clone(), row.size_percent.to_bits())
    });
    let best = |trace: &str, size_bits: u64| {
        simulated
            .iter()
            .filter(|row| row.trace == trace && row.size_percent.to_bits() == size_bits)
            .map(Row::hit_ratio)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut text = format!(
        "\n**Summary** (in-process, {} cells of trace x size)\n\n| policy | mean hit ratio % | cells within {NEAR_BEST_POINTS} point of the best | largest gap to the best, points |\n|---|---:|---:|---:|\n",
        cells.len()
    );
    for policy in distinct(&simulated, |row| row.policy.clone()) {
        let mine: Vec<&Row> = simulated
            .iter()
            .filter(|row| row.policy == policy)
            .collect();
        let mean = mine.iter().map(|row| row.hit_ratio()).sum::<f64>() / mine.len() as f64;
        let gaps: Vec<f64> = mine
            .iter()
            .map(|row| (best(&row.trace, row.size_percent.to_bits()) - row.hit_ratio()) * 100.0)
            .collect();
        let near = gaps.iter().filter(|&&gap| gap <= NEAR_BEST_POINTS).count();
        let worst = gaps.iter().copied().fold(0.0f64, f64::max);
        text.push_str(&format!(
            "| {policy} | {:.2} | {near}/{} | {worst:.2} |\n",
            mean * 100.0,
            mine.len()
        ));
    }
    text
}

/// Keys each server held at the end of its replays (DBSIZE), beside the keys the in-process
/// cache of the same fraction held (`reference`, one policy: they all hold about as many), and
/// each server's bytes for the whole working set: what equal `maxmemory` bytes bought.
pub fn keys_held_table(rows: &[Row], reference: &str) -> String {
    let servers: Vec<&Row> = rows.iter().filter(|row| row.source == "server").collect();
    if servers.is_empty() {
        return String::new();
    }
    let owned: Vec<Row> = rows.to_vec();
    let mut sizes = distinct(&owned, |row| row.size_percent);
    sizes.sort_by(f64::total_cmp);
    let mut text = String::from("\n**Keys held at the end of each replay** (server: DBSIZE; in-process: the simulated cache)\n\n| trace | cache |");
    for &size in &sizes {
        text.push_str(&format!(" {} |", size_label(size)));
    }
    text.push_str(" bytes for the whole working set |\n|---|---|");
    text.push_str(&"---:|".repeat(sizes.len() + 1));
    text.push('\n');
    for trace in distinct(&owned, |row| row.trace.clone()) {
        let of_trace: Vec<&Row> = owned
            .iter()
            .filter(|row| {
                row.trace == trace
                    && (row.source == "server"
                        || (row.source == "in-process" && row.policy == reference))
            })
            .collect();
        let labels = distinct(
            &of_trace
                .iter()
                .map(|row| (*row).clone())
                .collect::<Vec<_>>(),
            row_label,
        );
        for label in labels {
            text.push_str(&format!("| {trace} | {label} |"));
            let mut dataset_bytes = 0;
            for &size in &sizes {
                match of_trace
                    .iter()
                    .find(|row| row_label(row) == label && row.size_percent == size)
                {
                    Some(row) => {
                        dataset_bytes = if row.source == "server" {
                            row.server_dataset_bytes
                        } else {
                            row.dataset_bytes
                        };
                        text.push_str(&format!(" {} |", row.keys_held));
                    }
                    None => text.push_str(" |"),
                }
            }
            text.push_str(&format!(" {dataset_bytes} |\n"));
        }
    }
    text
}

/// Colours of the plot's lines, one per policy label in order (16 distinct hues, then reused).
const LINE_COLORS: [RGBColor; 16] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(255, 187, 120),
    RGBColor(44, 160, 44),
    RGBColor(152, 223, 138),
    RGBColor(148, 103, 189),
    RGBColor(197, 176, 213),
    RGBColor(140, 86, 75),
    RGBColor(196, 156, 148),
    RGBColor(227, 119, 194),
    RGBColor(214, 39, 40),
    RGBColor(0, 0, 0),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Pixel size of one panel of the plot.
const PANEL_SIZE: (u32, u32) = (760, 460);

/// Writes one panel per trace: hit ratio against cache size, a line per policy.
///
/// # Errors
/// Returns a message when the file cannot be written.
pub fn write_plot(path: &Path, rows: &[Row]) -> Result<(), String> {
    draw_plot(path, rows).map_err(|error| format!("cannot draw {}: {error}", path.display()))
}

fn draw_plot(path: &Path, rows: &[Row]) -> Result<(), Box<dyn std::error::Error>> {
    let traces = distinct(rows, |row| row.trace.clone());
    let labels = distinct(rows, row_label);
    let columns = if traces.len() > 1 { 2 } else { 1 };
    let panel_rows = traces.len().div_ceil(columns);
    let size = (
        PANEL_SIZE.0 * columns as u32,
        PANEL_SIZE.1 * panel_rows as u32,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((panel_rows, columns));
    for (trace, panel) in traces.iter().zip(panels.iter()) {
        let of_trace: Vec<Row> = rows
            .iter()
            .filter(|row| &row.trace == trace)
            .cloned()
            .collect();
        let mut sizes = distinct(&of_trace, |row| row.size_percent);
        sizes.sort_by(f64::total_cmp);
        let top = of_trace
            .iter()
            .map(|row| row.hit_ratio() * 100.0)
            .fold(0.0f64, f64::max);
        let x_labels: Vec<String> = sizes.iter().map(|&size| size_label(size)).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{trace}: hit ratio by cache size"),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(
                -0.2f64..(sizes.len() as f64 - 0.8),
                0f64..(top * 1.1).max(1.0),
            )?;
        chart
            .configure_mesh()
            .x_labels(sizes.len())
            .x_label_formatter(&|x| {
                let index = x.round();
                if (x - index).abs() < 1e-6 && index >= 0.0 {
                    x_labels.get(index as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("cache size, % of the working set")
            .y_desc("hit ratio, %")
            .draw()?;
        for (label_index, label) in labels.iter().enumerate() {
            let color = LINE_COLORS[label_index % LINE_COLORS.len()];
            let points: Vec<(f64, f64)> = sizes
                .iter()
                .enumerate()
                .filter_map(|(index, &size)| {
                    of_trace
                        .iter()
                        .find(|row| &row_label(row) == label && row.size_percent == size)
                        .map(|row| (index as f64, row.hit_ratio() * 100.0))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let is_server = label.ends_with("(server)");
            let width = if is_server { 3 } else { 1 };
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(width))
                });
            chart.draw_series(
                points
                    .iter()
                    .map(|&point| Circle::new(point, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::settings;
    use super::super::{simulate, trace::generate};
    use super::*;
    use ember_store::eviction::Policy;

    #[test]
    fn tables_and_plots_carry_every_row() {
        let trace = generate("zipf-1.0", 500, 5_000, 16, 5).unwrap();
        let mut rows = Vec::new();
        for policy in [Policy::AllKeysLru, Policy::WTinyLfu] {
            for size in [1.0, 10.0] {
                rows.push(simulate(&trace, policy, size, &settings()));
            }
        }
        let mut server = rows[0].clone();
        server.policy = "server:allkeys-lru".to_string();
        server.source = "server".to_string();
        rows.push(server);
        let table = markdown_table(&rows);
        for label in [
            "| allkeys-lru |",
            "| w-tinylfu |",
            "| server:allkeys-lru (server) |",
            "| 1% | 10% |",
        ] {
            assert!(table.contains(label), "{label} missing from\n{table}");
        }
        assert_eq!(table.matches("**").count() % 2, 0);
        let summary = summary_table(&rows);
        assert!(
            summary.contains("| w-tinylfu |") && summary.contains("/2 |"),
            "{summary}"
        );
        assert!(
            !summary.contains("(server)"),
            "servers are not summarised: {summary}"
        );
        let held = keys_held_table(&rows, "w-tinylfu");
        assert!(
            held.contains("| zipf-1.0 | server:allkeys-lru (server) |")
                && held.contains("| zipf-1.0 | w-tinylfu |")
                && !held.contains("| zipf-1.0 | allkeys-lru |"),
            "{held}"
        );
        let path = std::env::temp_dir().join(format!("ember-hitratio-{}.svg", std::process::id()));
        write_plot(&path, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("w-tinylfu") && svg.contains("zipf-1.0"));
        std::fs::remove_file(path).ok();
    }
}
