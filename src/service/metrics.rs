//! Prometheus text exposition, written by hand: a few gauges, counters and two histograms
//! do not need a metrics framework.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms: 1 ms to 30 s.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    inner: Mutex<HistogramData>,
}

#[derive(Debug, Default, Clone)]
struct HistogramData {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let v = d.as_secs_f64();
        let mut h = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += v;
    }

    fn snapshot(&self) -> HistogramData {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A metrics page being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// A label set such as `camera="front"`, escaped.
pub fn label(name: &str, value: &str) -> String {
    let mut v = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => v.push_str("\\\\"),
            '"' => v.push_str("\\\""),
            '\n' => v.push_str("\\n"),
            c => v.push(c),
        }
    }
    format!("{name}=\"{v}\"")
}

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP preroll_{name} {help}");
        let _ = writeln!(self.out, "# TYPE preroll_{name} {kind}");
    }

    /// One sample of the current family; `labels` is a comma-joined label list or "".
    pub fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.out, "preroll_{name} {value}");
        } else {
            let _ = writeln!(self.out, "preroll_{name}{{{labels}}} {value}");
        }
    }

    /// A whole single-sample family.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.labelled(name, kind, help, "", value);
    }

    /// A whole family of one sample with `labels`.
    pub fn labelled(&mut self, name: &str, kind: &str, help: &str, labels: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, labels, value);
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        let d = h.snapshot();
        self.family(name, "histogram", help);
        for (b, c) in BUCKETS.iter().zip(d.counts) {
            let le = format!("le=\"{b}\"");
            self.sample(&format!("{name}_bucket"), &le, c as f64);
        }
        self.sample(&format!("{name}_bucket"), "le=\"+Inf\"", d.count as f64);
        self.sample(&format!("{name}_sum"), "", d.sum);
        self.sample(&format!("{name}_count"), "", d.count as f64);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(200));
        h.observe(Duration::from_secs(60));
        let mut e = Exposition::default();
        e.histogram("x_seconds", "test", &h);
        let text = e.finish();
        assert!(
            text.contains("preroll_x_seconds_bucket{le=\"0.001\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("preroll_x_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("preroll_x_seconds_bucket{le=\"0.25\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("preroll_x_seconds_bucket{le=\"30\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("preroll_x_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("preroll_x_seconds_count 3\n"), "{text}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("camera", "a\"b\\c\nd"), "camera=\"a\\\"b\\\\c\\nd\"");
    }
}
