//! The report's JSON: one flat object per point, one per line.

use std::fmt::Write as _;

use super::Report;
use crate::compare::measure::Callers;
use crate::compare::{stream_window, System, Workload};

impl Report<'_> {
    /// One JSON object per point, one per line.
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for record in self.records {
            let p = &record.point;
            let mut line = Json::default();
            line.string("workload", p.workload.kind());
            line.number("size", Some(p.workload.size() as f64));
            line.number("in_flight", p.workload.in_flight().map(|n| n as f64));
            if let Workload::Mesh { nodes, .. } = p.workload {
                line.number("nodes", Some(nodes as f64));
            }
            line.string("label", &p.label());
            line.string("system", p.system.name());
            line.string("variant", p.variant.name());
            line.string(
                "callers",
                match p.variant.callers() {
                    Callers::Tasks => "tasks",
                    Callers::OneTask => "one task",
                },
            );
            line.string("topology", p.topology.name());
            line.string("executor", p.executor());
            line.number(
                "stream_window",
                stream_window(p, self.window).map(f64::from),
            );
            match &record.outcome {
                Err(error) => line.string("error", error),
                Ok(o) => {
                    let unit = match p.workload {
                        Workload::Stream { .. } => "msgs/s",
                        _ => "req/s",
                    };
                    line.number("seconds", Some(o.elapsed.as_secs_f64()));
                    line.number("ops", Some(o.ops as f64));
                    line.number("rate", Some(o.rate()));
                    line.string("unit", unit);
                    line.number("bytes_per_s", Some(o.rate() * p.workload.size() as f64));
                    line.number("p50_us", o.latency_us(0.5));
                    line.number("p99_us", o.latency_us(0.99));
                    // Under bulk, the CPU and the writes go to the stream, not
                    // the calls.
                    let (cpu, writes) = match p.workload {
                        Workload::EchoUnderBulk => (None, None),
                        _ => (o.cpu_us_per_op(), o.writes_per_op()),
                    };
                    line.number("cpu_us_per_op", cpu);
                    line.number("socket_writes_per_op", writes);
                    line.number("vs_raw", self.rate_vs(p, o, System::RawTcp));
                    line.number("vs_tonic", self.rate_vs(p, o, System::Tonic));
                    line.number("vs_tarpc", self.rate_vs(p, o, System::Tarpc));
                    line.number("p50_vs_raw", self.p50_vs_raw(p, o));
                    if p.workload == Workload::EchoUnderBulk {
                        line.number("bulk_bytes_per_s", o.bulk_bytes_per_s());
                        line.number("p50_vs_idle", self.vs_idle(p, o, 0.5));
                        line.number("p99_vs_idle", self.vs_idle(p, o, 0.99));
                    }
                    line.number("others_core_share", o.foreign_share());
                    if let Some((low, high)) = record.spread {
                        line.number("rate_min", Some(low));
                        line.number("rate_max", Some(high));
                    }
                }
            }
            out.push_str(&line.finish());
            out.push('\n');
        }
        out
    }
}

/// A flat JSON object written field by field.
#[derive(Default)]
struct Json(String);

impl Json {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{key}\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push('"');
        for c in value.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn number(&mut self, key: &str, value: Option<f64>) {
        self.key(key);
        match value {
            Some(v) if v.is_finite() => {
                let _ = write!(self.0, "{}", (v * 1000.0).round() / 1000.0);
            }
            _ => self.0.push_str("null"),
        }
    }

    fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects() {
        let mut line = Json::default();
        line.string("system", "a \"quoted\"\nname");
        line.number("rate", Some(1.23456));
        line.number("p50_us", None);
        line.number("nan", Some(f64::NAN));
        assert_eq!(
            line.finish(),
            r#"{"system":"a \"quoted\"\u000aname","rate":1.235,"p50_us":null,"nan":null}"#
        );
        assert_eq!(Json::default().finish(), "{}");
    }
}
