//! What `llmrpc verify` reports: one result per case and target, its runs summed up, and the
//! three renderings of them: the table, the JSON summary and the JUnit XML report.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::output::table;

/// How one run of one case went.
pub(crate) enum Run {
    /// Its detail.
    Passed(String),
    /// Its reason, with the trace id to look up.
    Failed(String),
    /// Why it did not run: a run that does not count.
    Skipped(String),
}

/// A case's runs on one target.
#[derive(Debug, Default, Serialize)]
pub(crate) struct CaseReport {
    case: &'static str,
    /// The provider, or `service` for cases of the service as a whole.
    target: String,
    runs: u32,
    passed: u32,
    success_rate: f64,
    ok: bool,
    /// What the last run found: a detail when it passed, the reason when it failed (with the
    /// trace id to look up) or was skipped.
    detail: String,
    seconds: f64,
}

impl CaseReport {
    pub(crate) fn new(case: &'static str, target: &str) -> CaseReport {
        CaseReport {
            case,
            target: target.to_owned(),
            ..CaseReport::default()
        }
    }

    pub(crate) fn record(&mut self, run: Run, seconds: f64) {
        self.seconds += seconds;
        match run {
            Run::Passed(detail) => {
                self.runs += 1;
                self.passed += 1;
                self.detail = detail;
            }
            Run::Failed(reason) => {
                self.runs += 1;
                self.detail = reason;
            }
            Run::Skipped(reason) => self.detail = reason,
        }
    }

    /// Sets the success rate (1.0 for a case that never ran) and the verdict at `min_success`.
    pub(crate) fn judge(&mut self, min_success: f64) {
        self.success_rate = match self.runs {
            0 => 1.0,
            runs => f64::from(self.passed) / f64::from(runs),
        };
        self.ok = self.success_rate >= min_success;
    }

    pub(crate) fn ok(&self) -> bool {
        self.ok
    }

    fn skipped(&self) -> bool {
        self.runs == 0
    }
}

/// The table of `--output text`, one row per result.
pub(crate) fn text(reports: &[CaseReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let result = match (r.skipped(), r.ok) {
                (true, _) => "skipped",
                (false, true) => "ok",
                (false, false) => "FAILED",
            };
            vec![
                r.target.clone(),
                r.case.to_owned(),
                result.to_owned(),
                format!("{}/{}", r.passed, r.runs),
                r.detail.clone(),
            ]
        })
        .collect();
    table(&["target", "case", "result", "passed", "detail"], &rows)
}

/// The document of `--output json`.
pub(crate) fn json(url: &str, reports: &[CaseReport], min_success: f64, repeat: u32) -> Value {
    let failed = reports.iter().filter(|r| !r.ok).count();
    json!({"url": url, "ok": failed == 0, "cases": reports.len(), "failed": failed,
           "min_success": min_success, "repeat": repeat, "results": reports})
}

/// One testsuite, one testcase per case and target, a failure with its reason.
pub(crate) fn junit(reports: &[CaseReport]) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    // What is rendered as a <failure>: a skipped case (no runs) is never one.
    let failures = reports.iter().filter(|r| !r.skipped() && !r.ok).count();
    let skipped = reports.iter().filter(|r| r.skipped()).count();
    let time: f64 = reports.iter().map(|r| r.seconds).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuite name=\"llmrpc verify\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        reports.len()
    );
    for r in reports {
        let _ = write!(
            xml,
            "  <testcase classname=\"llmrpc.verify.{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&r.target),
            escape(r.case),
            r.seconds
        );
        if r.skipped() {
            let _ = writeln!(
                xml,
                ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                escape(&r.detail)
            );
        } else if !r.ok {
            let message = format!("{}/{} runs passed", r.passed, r.runs);
            let _ = writeln!(
                xml,
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>",
                escape(&message),
                escape(&r.detail)
            );
        } else {
            let _ = writeln!(xml, "/>");
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_has_a_testcase_per_case_and_escapes_reasons() {
        let mut passed = CaseReport::new("complete", "openai");
        passed.record(Run::Passed("fine".into()), 0.1);
        let mut failed = CaseReport::new("stream_ws", "openai");
        failed.record(Run::Passed("fine".into()), 0.1);
        failed.record(Run::Failed("expected <-32001> & \"x\"".into()), 0.1);
        let mut skipped = CaseReport::new("a2a", "service");
        skipped.record(
            Run::Skipped("not offered by this service: skipped".into()),
            0.0,
        );
        let mut reports = vec![passed, failed, skipped];
        for r in &mut reports {
            r.judge(1.0);
        }
        let xml = junit(&reports);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase classname=\"llmrpc.verify.openai\" name=\"complete\""));
        assert!(xml.contains("<failure message=\"1/2 runs passed\">expected &lt;-32001&gt; &amp; &quot;x&quot;</failure>"), "{xml}");
        assert!(xml.contains("<skipped message=\"not offered by this service: skipped\"/>"));
    }

    #[test]
    fn a_skipped_run_keeps_the_runs_before_it() {
        let mut report = CaseReport::new("deadline", "service");
        report.record(Run::Passed("-32003".into()), 0.1);
        report.record(Run::Skipped("why".into()), 0.0);
        report.judge(1.0);
        assert_eq!((report.runs, report.passed, report.ok), (1, 1, true));
        assert_eq!(report.detail, "why");
    }
}
