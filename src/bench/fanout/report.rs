//! What a run measured, as one typed value that both the JSON and the table print.

use super::*;

pub(super) fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// What one run measured: printed as one JSON object (`--json`) or as a table.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub(super) url: String,
    pub(super) clients: usize,
    pub(super) mode: &'static str,
    pub(super) window: Option<usize>,
    pub(super) connect_s: f64,
    pub(super) bids: u64,
    pub(super) expected: u64,
    pub(super) delivered: u64,
    pub(super) lost: u64,
    pub(super) duplicates: u64,
    pub(super) errors: u64,
    pub(super) error_sample: Option<String>,
    pub(super) bidding_s: f64,
    pub(super) wall_s: f64,
    pub(super) msgs_per_s: u64,
    pub(super) bids_per_s: u64,
    pub(super) latency_ms: Latency,
    pub(super) server: Option<ServerUse>,
    pub(super) load_avg_1m: Option<f64>,
    pub(super) generator: Generator,
}

#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

/// The server's own use of the machine, when it runs here (found by its port).
#[derive(Debug, Serialize)]
pub(super) struct ServerUse {
    pub(super) pid: u64,
    pub(super) peak_rss_mib: Option<f64>,
    pub(super) rss_connected_mib: Option<f64>,
    pub(super) cpu_s: Option<f64>,
    pub(super) cpu_pct: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(super) struct Generator {
    pub(super) threads: usize,
    pub(super) cpu_s: f64,
    pub(super) cpu_pct: u64,
}

impl Report {
    pub(super) fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.errors == 0
    }

    /// The rows of the table, in the JSON's numbers.
    pub(super) fn print_table(&self) {
        let mut rows: Vec<(&str, String)> = vec![
            ("server", self.url.clone()),
            (
                "clients / mode",
                format!(
                    "{} / {}{}",
                    self.clients,
                    self.mode,
                    self.window
                        .map(|w| format!(" (window {w})"))
                        .unwrap_or_default()
                ),
            ),
            (
                "connect (all clients)",
                format!("{} s", num(self.connect_s)),
            ),
            (
                "bids / bidding time",
                format!("{} in {} s", self.bids, num(self.bidding_s)),
            ),
            (
                "delivered / expected",
                format!("{} / {}", self.delivered, self.expected),
            ),
            (
                "lost / duplicates / errors",
                format!("{} / {} / {}", self.lost, self.duplicates, self.errors),
            ),
            ("delivered messages/s", self.msgs_per_s.to_string()),
            (
                "latency p50 / p90 / p99 / max",
                format!(
                    "{} / {} / {} / {} ms",
                    num(self.latency_ms.p50),
                    num(self.latency_ms.p90),
                    num(self.latency_ms.p99),
                    num(self.latency_ms.max)
                ),
            ),
        ];
        if let Some(s) = &self.server {
            rows.push((
                "server peak RSS (VmHWM)",
                format!("{} MiB", num(s.peak_rss_mib)),
            ));
            rows.push((
                "server CPU during the run",
                format!("{} s ({} %)", num(s.cpu_s), num(s.cpu_pct)),
            ));
        }
        rows.push((
            "generator CPU",
            format!(
                "{} s ({} %, {} threads)",
                num(self.generator.cpu_s),
                self.generator.cpu_pct,
                self.generator.threads
            ),
        ));
        rows.push(("load average (1 min) at start", num(self.load_avg_1m)));
        if let Some(e) = &self.error_sample {
            rows.push(("first client error", e.clone()));
        }
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            println!("{k:<w$}  {v}");
        }
    }
}

/// A value as the JSON shows it (`2.0`, not `2`), `-` when unknown.
pub(super) fn num<T: Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::Null) | Err(_) => "-".into(),
        Ok(v) => v.to_string(),
    }
}
