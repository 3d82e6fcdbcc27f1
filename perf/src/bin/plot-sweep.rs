//! Draws the worker-count sweep (the CSV `sweep.sh` writes) as a PNG: requests/s against
//! workers, one line per profile, with each profile's single-threaded floor as a dashed line.
//!
//! ```text
//! plot-sweep sweep.csv sweep.png
//! ```
//!
//! The CSV's header is `profile,binary,workers,median_seconds,requests_per_sec,peak_rss_kib`;
//! `binary` is `node` or `floor`. Text needs a TrueType font: the first of [`FONTS`] that
//! exists, or the file named by `PLOT_FONT`.

use std::error::Error;
use std::process::ExitCode;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const WORKERS: [u32; 4] = [1, 2, 4, 8];

struct Row {
    profile: String,
    binary: String,
    workers: u32,
    requests_per_sec: f64,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, png] = args.as_slice() else {
        eprintln!("usage: plot-sweep SWEEP.csv OUT.png");
        return ExitCode::from(2);
    };
    match plot(csv, png) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plot-sweep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plot(csv: &str, png: &str) -> Result<(), Box<dyn Error>> {
    load_font()?;
    let rows = read_rows(csv)?;
    let mut profiles: Vec<&str> = rows.iter().map(|r| r.profile.as_str()).collect();
    profiles.dedup();
    let top = rows.iter().map(|r| r.requests_per_sec).fold(0.0, f64::max) * 1.15 / 1e3;

    let root = BitMapBackend::new(png, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "maelstrom-kafka replay throughput vs worker threads",
            ("sans-serif", 24),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..3.2f64, 0.0..top)?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| {
            let i = x.round() as usize;
            WORKERS.get(i).map_or(String::new(), |w| w.to_string())
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("MAELSTROM_KAFKA_WORKERS")
        .y_desc("thousand requests/s (median)")
        .label_style(("sans-serif", 16))
        .draw()?;

    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (profile, colour) in profiles.iter().zip(colours) {
        let node: Vec<(f64, f64)> = WORKERS
            .iter()
            .enumerate()
            .filter_map(|(i, &w)| {
                rows.iter()
                    .find(|r| r.profile == *profile && r.binary == "node" && r.workers == w)
                    .map(|r| (i as f64, r.requests_per_sec / 1e3))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(node.clone(), colour.stroke_width(3)))?
            .label(format!("node, {profile}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
            });
        chart.draw_series(node.iter().map(|&p| Circle::new(p, 5, colour.filled())))?;
        if let Some(floor) = rows
            .iter()
            .find(|r| r.profile == *profile && r.binary == "floor")
        {
            let y = floor.requests_per_sec / 1e3;
            let dashes: Vec<Vec<(f64, f64)>> = (0..16)
                .map(|i| {
                    let x = f64::from(i) * 0.2;
                    vec![(x, y), (x + 0.1, y)]
                })
                .collect();
            for dash in dashes {
                chart.draw_series(LineSeries::new(dash, colour.stroke_width(1)))?;
            }
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(format!("floor (parse only, 1 thread), {profile}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 8, y)], colour.stroke_width(1))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

fn load_font() -> Result<(), Box<dyn Error>> {
    let path = std::env::var("PLOT_FONT")
        .ok()
        .or_else(|| {
            FONTS
                .iter()
                .find(|p| std::path::Path::new(p).exists())
                .map(|p| (*p).into())
        })
        .ok_or("no TrueType font found; install fonts-dejavu-core or set PLOT_FONT")?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(&path)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{path} is not a usable font"))?;
    Ok(())
}

fn read_rows(csv: &str) -> Result<Vec<Row>, Box<dyn Error>> {
    let text = std::fs::read_to_string(csv)?;
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let [profile, binary, workers, _, requests_per_sec, ..] = fields.as_slice() else {
            return Err(format!("bad CSV line: {line}").into());
        };
        rows.push(Row {
            profile: (*profile).into(),
            binary: (*binary).into(),
            workers: workers.parse()?,
            requests_per_sec: requests_per_sec.parse()?,
        });
    }
    if rows.is_empty() {
        return Err(format!("{csv} has no rows").into());
    }
    Ok(rows)
}
