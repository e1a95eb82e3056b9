//! Measurements, their ratios, and how they are written: a Markdown table on stdout and one
//! JSON object per line in `bench.jsonl`.

use std::fmt::Write as _;
use std::path::Path;

/// One measured quantity.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Benchmark id (B2, B7).
    pub id: &'static str,
    /// CPU placement.
    pub placement: &'static str,
    /// What was measured.
    pub name: String,
    /// The median (or p50) value.
    pub value: f64,
    /// Lowest and highest observation.
    pub spread: (f64, f64),
    /// Unit of `value`.
    pub unit: &'static str,
}

/// A ratio of two measurements of one run.
#[derive(Debug, Clone)]
pub struct Ratio {
    pub id: &'static str,
    pub placement: &'static str,
    pub name: String,
    pub numerator: f64,
    pub denominator: f64,
    pub goal: &'static str,
}

/// Everything one run measured.
pub struct Report {
    scale: f64,
    measurements: Vec<Measurement>,
    ratios: Vec<Ratio>,
}

impl Report {
    pub fn new(scale: f64) -> Self {
        Self {
            scale,
            measurements: Vec::new(),
            ratios: Vec::new(),
        }
    }

    pub fn add(&mut self, measurement: Measurement) {
        eprintln!(
            "bench: {} {} {}: {:.3} {} (spread {:.3}..{:.3})",
            measurement.id,
            measurement.placement,
            measurement.name,
            measurement.value,
            measurement.unit,
            measurement.spread.0,
            measurement.spread.1
        );
        self.measurements.push(measurement);
    }

    /// Records `rows` over the median of `seconds` as `<name>: rows/s` of benchmark `id`;
    /// returns the rate.
    pub fn rows_per_second(
        &mut self,
        (id, placement): (&'static str, &'static str),
        name: &str,
        rows: u64,
        seconds: &[f64],
    ) -> f64 {
        let (median, spread) = summarize(seconds);
        let rate = rows as f64 / median;
        self.add(Measurement {
            id,
            placement,
            name: format!("{name}: rows/s"),
            value: rate,
            spread: (rows as f64 / spread.1, rows as f64 / spread.0),
            unit: "rows/s",
        });
        rate
    }

    pub fn ratio(&mut self, ratio: Ratio) {
        self.ratios.push(ratio);
    }

    /// Prints the table and writes `bench.jsonl` and `bench.md` under `out`.
    pub fn write(&self, out: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(out)?;
        let mut jsonl = String::new();
        for m in &self.measurements {
            let _ = writeln!(
                jsonl,
                "{{\"kind\":\"measurement\",\"id\":\"{}\",\"placement\":\"{}\",\"name\":{},\"value\":{},\"min\":{},\"max\":{},\"unit\":\"{}\",\"scale\":{}}}",
                m.id,
                m.placement,
                json_string(&m.name),
                m.value,
                m.spread.0,
                m.spread.1,
                m.unit,
                self.scale
            );
        }
        let mut table = format!(
            "## Tollgate benchmarks (TPC-H scale {})\n\n| id | placement | ratio | numerator | denominator | value | goal |\n| --- | --- | --- | --- | --- | --- | --- |\n",
            self.scale
        );
        for r in &self.ratios {
            let value = r.numerator / r.denominator;
            let _ = writeln!(
                jsonl,
                "{{\"kind\":\"ratio\",\"id\":\"{}\",\"placement\":\"{}\",\"name\":{},\"numerator\":{},\"denominator\":{},\"value\":{},\"goal\":{},\"scale\":{}}}",
                r.id,
                r.placement,
                json_string(&r.name),
                r.numerator,
                r.denominator,
                value,
                json_string(r.goal),
                self.scale
            );
            let _ = writeln!(
                table,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} |",
                r.id, r.placement, r.name, r.numerator, r.denominator, value, r.goal
            );
        }
        table.push_str("\n| id | placement | measurement | median | min | max | unit |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        for m in &self.measurements {
            let _ = writeln!(
                table,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} |",
                m.id, m.placement, m.name, m.value, m.spread.0, m.spread.1, m.unit
            );
        }
        std::fs::write(out.join("bench.jsonl"), jsonl)?;
        std::fs::write(out.join("bench.md"), &table)?;
        println!("{table}");
        Ok(())
    }
}

fn json_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Median and (min, max) of samples; `(0, (0, 0))` for none.
pub fn summarize(samples: &[f64]) -> (f64, (f64, f64)) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.as_slice() {
        [] => (0.0, (0.0, 0.0)),
        [only] => (*only, (*only, *only)),
        all => (all[all.len() / 2], (all[0], all[all.len() - 1])),
    }
}
