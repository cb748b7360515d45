//! results.svg: four panels drawn with plotters' SVG backend: requests/s,
//! p99 latency and server CPU per request at each number of connections,
//! each round a dot and the median a bar, and memory per idle connection.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{LoadRow, Report};

const SIZE: (u32, u32) = (1100, 780);

/// A fixed colour per server, so that the book's figure keeps its legend.
fn colour(key: &str) -> RGBColor {
    match key {
        "tokio" => RGBColor(0, 0, 0),
        "tokio-again" => RGBColor(90, 90, 90),
        "lesson-02" => RGBColor(140, 140, 140),
        "lesson-10" => RGBColor(214, 39, 40),
        "lesson-10-fork" => RGBColor(255, 152, 150),
        "lesson-11" => RGBColor(255, 127, 14),
        "lesson-12" => RGBColor(31, 119, 180),
        "lesson-13" => RGBColor(44, 160, 44),
        // Servers given with --server: a colour from the name, so that two
        // of them differ and each keeps its colour from run to run.
        other => {
            const MORE: [RGBColor; 5] = [
                RGBColor(148, 103, 189),
                RGBColor(140, 86, 75),
                RGBColor(227, 119, 194),
                RGBColor(188, 189, 34),
                RGBColor(23, 190, 207),
            ];
            MORE[other.bytes().map(usize::from).sum::<usize>() % MORE.len()]
        }
    }
}

pub fn draw(report: &Report, path: &Path) -> Result<(), String> {
    draw_inner(report, path)
        .map_err(|e| format!("draw {}: {e}", path.display()))
}

fn draw_inner(
    report: &Report,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let title = if report.smoke {
        "bench --smoke: drawn from a correctness check, the numbers mean nothing".to_string()
    } else {
        format!(
            "{}Loopback ping-pong, {}, {} CPUs, {} rounds: a dot per round (hollow: disturbed), a bar at the median",
            if report.short() { "A SHORT RUN. " } else { "" },
            report.machine.date,
            report.machine.cpus,
            report.rounds
        )
    };
    let (top, body) = root.split_vertically(84);
    let top = top.titled(&title, ("sans-serif", 20))?;
    legend(report, &top)?;
    let panels = body.split_evenly((2, 2));

    let mut counts: Vec<usize> = report.rows.iter().map(|r| r.conns).collect();
    counts.sort_unstable();
    counts.dedup();

    strip_panel(
        report,
        &panels[0],
        &counts,
        "requests/s (higher is better)",
        false,
        |r| r.requests_per_s,
    )?;
    strip_panel(
        report,
        &panels[1],
        &counts,
        "p99 latency, µs (lower is better; log scale)",
        true,
        |r| r.p99_us,
    )?;
    strip_panel(
        report,
        &panels[2],
        &counts,
        "server CPU µs per request (lower is better)",
        false,
        |r| r.cpu_us_per_request,
    )?;
    idle_panel(report, &panels[3])?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One value per server at each connection count, as a strip: a dot per
/// round (in round order, left to right; hollow for a disturbed round) and
/// a bar at the median.
fn strip_panel(
    report: &Report,
    area: &Area,
    counts: &[usize],
    caption: &str,
    log: bool,
    value: fn(&LoadRow) -> f64,
) -> Result<(), Box<dyn std::error::Error>> {
    struct Strip<'a> {
        key: &'a str,
        /// Index of the connection count, then each round's value and
        /// whether that round was disturbed, then the median.
        at: usize,
        rounds: Vec<(f64, bool)>,
        median: f64,
    }
    let usable = |v: f64| v.is_finite() && v > 0.0;
    let mut strips = Vec::new();
    for s in &report.subjects {
        for (at, &n) in counts.iter().enumerate() {
            let Some(f) = report.figures(&s.key, n) else { continue };
            let disturbed = report.disturbed(n);
            let rounds: Vec<(f64, bool)> = f
                .rounds
                .iter()
                .enumerate()
                .map(|(i, r)| (value(r), disturbed.get(i) == Some(&true)))
                .filter(|(v, _)| usable(*v))
                .collect();
            let median = value(&f.median);
            if !rounds.is_empty() && usable(median) {
                strips.push(Strip { key: &s.key, at, rounds, median });
            }
        }
    }
    // A log scale is drawn as a linear axis over log10 of the values, with
    // the labels turned back into values: plotters' own log axis crowds its
    // labels around each power of ten.
    let to_axis = |v: f64| if log { v.log10() } else { v };
    let from_axis = move |y: f64| if log { 10f64.powf(y) } else { y };
    let values = || {
        strips.iter().flat_map(|s| s.rounds.iter().map(|&(v, _)| to_axis(v)))
    };
    // A log axis spans whole powers of ten, so that its labels are 10, 100,
    // 1000 and not values in between.
    let (lo, hi) = match (values().reduce(f64::min), values().reduce(f64::max))
    {
        (Some(lo), Some(hi)) if log => {
            (lo.floor(), hi.ceil().max(lo.floor() + 1.0))
        }
        (Some(_), Some(hi)) => (0.0, hi * 1.15),
        _ => (0.0, 1.0),
    };
    let y_labels = if log { (hi - lo) as usize + 1 } else { 8 };
    let categories = counts.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            -0.5..categories as f64 - 0.5,
            lo..hi.max(lo + 1e-9),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        // Whole numbers only: one label under each connection count.
        .x_labels(categories)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            counts.get(i as usize).map_or(String::new(), |&n| match n {
                1 => "1 connection".to_string(),
                n => format!("{n} connections"),
            })
        })
        .y_labels(y_labels)
        .y_label_formatter(&|y| axis_label(*y, log, from_axis))
        .draw()?;
    // Each server has a slot of the same width inside every category, in
    // the legend's order, so that a server keeps its place.
    let slots = report.subjects.len().max(1) as f64;
    let slot = 0.84 / slots;
    let place = |key: &str| {
        let j = report.subjects.iter().position(|s| s.key == key).unwrap_or(0);
        -0.42 + slot * (j as f64 + 0.5)
    };
    for strip in &strips {
        let c = colour(strip.key);
        let centre = strip.at as f64 + place(strip.key);
        let n = strip.rounds.len() as f64;
        let step = if n > 1.0 { slot * 0.7 / (n - 1.0) } else { 0.0 };
        let x = |i: usize| centre - slot * 0.35 + step * i as f64;
        let x = |i: usize| if n > 1.0 { x(i) } else { centre };
        chart.draw_series(strip.rounds.iter().enumerate().map(
            |(i, &(v, disturbed))| {
                let at = (x(i), to_axis(v));
                if disturbed {
                    Circle::new(at, 4, c.stroke_width(1))
                } else {
                    Circle::new(at, 3, c.filled())
                }
            },
        ))?;
        let y = to_axis(strip.median);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(centre - slot * 0.45, y), (centre + slot * 0.45, y)],
            c.stroke_width(2),
        )))?;
    }
    Ok(())
}

/// One legend for all panels, under the title: a line in each server's
/// colour and its name.
fn legend(
    report: &Report,
    area: &Area,
) -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<(RGBColor, String)> = report
        .subjects
        .iter()
        .map(|s| (colour(&s.key), short_name(&s.key)))
        .collect();
    // The naive text measure of plotters' SVG backend: about 7 px a
    // character at 14 px; each entry is a 24 px line, a gap and its name.
    let entry = |name: &str| 24 + 8 + 7 * name.len() as i32 + 28;
    let (width, height) = area.dim_in_pixel();
    // As many entries to a row as fit across, each row centred.
    let mut rows: Vec<Vec<(RGBColor, String)>> = vec![Vec::new()];
    let mut used = 0;
    for (c, name) in names {
        let last = rows.last_mut().expect("one row at least");
        if !last.is_empty() && used + entry(&name) > width as i32 - 40 {
            rows.push(Vec::new());
            used = 0;
        }
        used += entry(&name);
        rows.last_mut().expect("just pushed").push((c, name));
    }
    let style = TextStyle::from(("sans-serif", 14))
        .pos(Pos::new(HPos::Left, VPos::Center));
    let line_height = 20;
    let mut y = (height as i32 - line_height * (rows.len() as i32 - 1)) / 2;
    for row in rows {
        let total: i32 = row.iter().map(|(_, n)| entry(n)).sum();
        let mut x = (width as i32 - total).max(0) / 2;
        for (c, name) in row {
            area.draw(&PathElement::new(
                vec![(x, y), (x + 24, y)],
                c.stroke_width(3),
            ))?;
            area.draw(&Text::new(name.clone(), (x + 32, y), style.clone()))?;
            x += entry(&name);
        }
        y += line_height;
    }
    Ok(())
}

/// A legend entry: the server and its design in a word or two.
fn short_name(key: &str) -> String {
    let what = match key {
        // Short, so that most entries fit on one row.
        "tokio" => "(reference)",
        "tokio-again" => "(again)",
        "lesson-02" => "one client",
        "lesson-10" => "threads",
        "lesson-10-fork" => "fork",
        "lesson-11" => "pool",
        "lesson-12" => "poll",
        "lesson-13" => "epoll",
        _ => return key.to_string(),
    };
    format!("{key} {what}")
}

/// Bytes of user-space memory per idle connection, one bar per server
/// (log scale, drawn like the latency panel), with the epoll lesson's
/// target as a line.
fn idle_panel(
    report: &Report,
    area: &Area,
) -> Result<(), Box<dyn std::error::Error>> {
    let bars: Vec<(String, f64)> = report
        .idle_rows
        .iter()
        .filter_map(|row| Some((row.key.clone(), row.bytes_per_conn()?)))
        .collect();
    let caption = match report.idle_count {
        Some(n) => format!(
            "bytes of server RSS per idle connection ({n} open; log scale)"
        ),
        None => "memory per idle connection: not measured".to_string(),
    };
    // Figures below 1 byte (memory handed back meanwhile) sit on the floor;
    // the table has the number.
    let height = |v: f64| v.max(1.0).log10();
    // The course's target, from the same table the targets list reads.
    let goal = crate::report::idle_target("lesson-13").unwrap_or(128.0);
    let top = bars.iter().map(|(_, v)| height(*v)).fold(height(goal), f64::max);
    // Whole powers of ten, with room above the highest bar for its name
    // and figure.
    let top = (top + 0.6).ceil();
    let n = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .x_labels(0)
        .y_labels(top as usize + 1)
        .y_label_formatter(&|y| axis_label(*y, true, |y| 10f64.powf(y)))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (key, v))| {
        let x = i as f64;
        Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, height(*v))],
            colour(key).filled(),
        )
    }))?;
    // Each bar is named above its top, with its figure; the target line is
    // named on the line itself.
    let above = TextStyle::from(("sans-serif", 13))
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    // Two lines, the name over the figure: side by side, the names of
    // neighbouring bars would run into each other.
    chart.draw_series(bars.iter().enumerate().map(|(i, (key, v))| {
        EmptyElement::at((i as f64, height(*v)))
            + Text::new(key.clone(), (0, -18), above.clone())
            + Text::new(format!("{v:.0} B"), (0, -4), above.clone())
    }))?;
    let target = colour("lesson-13");
    chart.draw_series(LineSeries::new(
        [(-0.5, height(goal)), (n - 0.5, height(goal))],
        target.stroke_width(1),
    ))?;
    // Named in the top right corner, clear of the bars and their names
    // (at the line itself the name ran across the first bars).
    let right = TextStyle::from(("sans-serif", 12))
        .color(&target)
        .pos(Pos::new(HPos::Right, VPos::Top));
    chart.draw_series(std::iter::once(
        EmptyElement::at((n - 0.5, top))
            + Text::new(
                format!("green line: the epoll lesson's target, {goal:.0} B"),
                (-4, 4),
                right,
            ),
    ))?;
    Ok(())
}

/// A y-axis label; on a log axis, only at whole powers of ten.
fn axis_label(y: f64, log: bool, from_axis: impl Fn(f64) -> f64) -> String {
    if log && (y - y.round()).abs() > 1e-6 {
        return String::new();
    }
    number(from_axis(y))
}

/// An axis label: no decimals for large numbers, two significant ones for
/// small ones.
fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
