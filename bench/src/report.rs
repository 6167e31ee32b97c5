//! Rows of the results table, and the statistics behind them.

use std::time::Duration;

/// A goal a row is held to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub bench: &'static str,
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    /// What the same measure gave for the reference, and its name.
    pub reference: Option<(String, f64)>,
    pub target: Option<Target>,
}

impl Row {
    pub fn new(
        bench: &'static str,
        what: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Row {
            bench,
            what: what.into(),
            value,
            unit,
            reference: None,
            target: None,
        }
    }

    pub fn against(mut self, name: impl Into<String>, value: f64) -> Self {
        self.reference = Some((name.into(), value));
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn met(&self) -> Option<bool> {
        self.target.map(|t| match t {
            Target::AtMost(max) => self.value <= max,
            Target::AtLeast(min) => self.value >= min,
        })
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| benchmark | measure | value | reference | ratio | target | met |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let (reference, ratio) = match &r.reference {
            Some((name, v)) if *v != 0.0 => (
                format!("{name}: {}", number(*v, r.unit)),
                format!("{:.2}", r.value / v),
            ),
            Some((name, v)) => (format!("{name}: {}", number(*v, r.unit)), "-".into()),
            None => ("-".into(), "-".into()),
        };
        let target = match r.target {
            Some(Target::AtMost(v)) => format!("<= {}", number(v, r.unit)),
            Some(Target::AtLeast(v)) => format!(">= {}", number(v, r.unit)),
            None => "-".into(),
        };
        let met = match r.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {reference} | {ratio} | {target} | {met} |\n",
            r.bench,
            r.what,
            number(r.value, r.unit)
        ));
    }
    out
}

fn number(v: f64, unit: &str) -> String {
    let n = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{n} {unit}")
}

/// Percentile `p` (0-100) of `samples`, sorting them.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// The median of `values`.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The median of `rounds` runs of `measure`: a store-bound figure moves a lot between
/// runs on a shared VM, so one run says little.
pub async fn median_of<F, Fut>(rounds: usize, mut measure: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<f64>>,
{
    let mut values = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        values.push(measure().await?);
    }
    // The spread goes to stderr beside the timings: the table shows the median only.
    let shown: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    eprintln!("  rounds: {}", shown.join(", "));
    Ok(median(&mut values))
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&mut s, 50.0), Duration::from_micros(51));
        assert_eq!(percentile(&mut s, 99.0), Duration::from_micros(99));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        let row = Row::new("x", "y", 5.0, "us").target(Target::AtMost(10.0));
        assert_eq!(row.met(), Some(true));
        assert!(markdown(&[row.against("ref", 2.5)]).contains("| 2.00 |"));
    }
}
