//! `GET /metrics`: the node's state in the Prometheus text format (0.0.4),
//! encoded by `prometheus-client`.
//!
//! Every value is read first, into a [`Scrape`], and encoded after: no lock
//! of the runtime is held while the text is written. The encoder escapes
//! label values, which matters because a function's name (a label of
//! `wray_task_duration_seconds`) comes from a guest's export names and may
//! hold quotes, backslashes and line feeds.

use crate::api::stats::MemoCounts;
use crate::events::{Histogram, LATENCY_BUCKETS, STATES, TaskState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;

pub(crate) use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The values one scrape shows, read before encoding.
#[derive(Debug)]
pub(crate) struct Scrape {
    /// Calls by state, in [`TaskState::ALL`] order.
    pub tasks: [u64; STATES],
    /// Actors by state name.
    pub actors: [(&'static str, u64); 4],
    /// Jobs by status name.
    pub jobs: [(&'static str, u64); 5],
    /// Unlabelled gauges: name, help, value.
    pub gauges: Vec<(&'static str, &'static str, u64)>,
    /// Run times of finished attempts, by function.
    pub latency: Vec<(Arc<str>, Histogram)>,
    /// What the memo table did.
    pub memo: MemoCounts,
}

impl Scrape {
    /// The text of `/metrics`.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing to a String cannot fail, and every value is finite.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// Encodes gauge `name` with one sample per `(label value, value)`.
fn labelled(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (&'static str, u64)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in samples {
        let labels = [(label, value)];
        ConstGauge::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        labelled(
            &mut e,
            "wray_tasks",
            "Tasks and actor calls by state (pending and running now; the others since start).",
            "state",
            TaskState::ALL.map(|s| (s.as_str(), self.tasks[s as usize])),
        )?;
        labelled(
            &mut e,
            "wray_actors",
            "Actors by state.",
            "state",
            self.actors,
        )?;
        labelled(&mut e, "wray_jobs", "Jobs by status.", "status", self.jobs)?;
        for &(name, help, v) in &self.gauges {
            let g = ConstGauge::new(v);
            g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let m = &self.memo;
        for (name, help, v) in [
            (
                "wray_memo_hits",
                "Memoized calls answered from the memo table without running.",
                m.hits,
            ),
            (
                "wray_memo_misses",
                "Memoized calls not found in the memo table, which ran.",
                m.misses,
            ),
            (
                "wray_memo_stored",
                "Results stored in the memo table.",
                m.stored,
            ),
            (
                "wray_memo_evicted",
                "Memo entries evicted to stay within the memo size.",
                m.evicted,
            ),
            (
                "wray_memo_corrupt",
                "Memo files whose digests did not match (removed, recomputed).",
                m.corrupt,
            ),
        ] {
            let c = ConstCounter::new(v);
            c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        for (name, help, v) in [
            (
                "wray_memo_bytes",
                "Bytes of memoized results held in memory.",
                m.bytes,
            ),
            (
                "wray_memo_disk_bytes",
                "Bytes of memo files in the memo directory.",
                m.disk_bytes,
            ),
        ] {
            let g = ConstGauge::new(v);
            g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        let mut m = e.encode_descriptor(
            "wray_task_duration_seconds",
            "Run time of finished attempts, by function.",
            None,
            MetricType::Histogram,
        )?;
        for (function, h) in &self.latency {
            // The record's buckets are cumulative; the encoder sums them.
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = h
                .buckets
                .iter()
                .zip(LATENCY_BUCKETS)
                .map(|(&n, le)| (le, n - std::mem::replace(&mut below, n)))
                .collect();
            let labels = [("function", &**function)];
            m.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_value_cannot_break_out_of_its_line() {
        let evil = "a\"} 1\nevil_injected_metric 666\n# x\\";
        let h = Histogram {
            buckets: [1; LATENCY_BUCKETS.len()],
            count: 1,
            sum: 0.0002,
        };
        let text = Scrape {
            tasks: [0; STATES],
            actors: [
                ("STARTING", 0),
                ("ALIVE", 0),
                ("RESTARTING", 0),
                ("DEAD", 0),
            ],
            jobs: [("PENDING", 0); 5],
            gauges: vec![],
            latency: vec![(evil.into(), h)],
            memo: MemoCounts::default(),
        }
        .encode();
        assert!(
            text.contains(r#"wray_task_duration_seconds_count{function="a\"} 1\nevil_injected_metric 666\n# x\\"} 1"#),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("evil")), "{text}");
        assert!(
            text.contains(r#"wray_task_duration_seconds_bucket{function="a\"} 1\nevil_injected_metric 666\n# x\\",le="0.001"} 1"#),
            "cumulative buckets stay cumulative: {text}"
        );
    }
}
