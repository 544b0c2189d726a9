//! Running the suite: the steps in order (each provider's cases, then the service's), each run
//! of the suite after the previous one, and where each service case runs. A case that needs an
//! answer runs on the provider that passed the most of its own cases in this run, so that a
//! provider down fails its own cases only; when no provider passed any, it is skipped, saying
//! why, rather than failed for the provider's sake.

use std::time::Instant;

use indicatif::ProgressBar;

use super::cases::{Case, Group};
use super::checks::Settings;
use super::client::Client;
use super::report::{CaseReport, Run};
use super::targets::Target;

/// Where a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// On the target of this index, with its model.
    Provider(usize),
    /// On the service as a whole.
    Service,
}

/// One case on one target: a line of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    case: Case,
    on: On,
}

/// The reason of a case that needs an answer when no provider can give one.
const NO_PROVIDER: &str = "no provider passed any of its own cases in this run: skipped";

/// The steps of one run: `selected` cases (every one when empty), the fault cases only with
/// `mock`; each provider's, then the service's.
pub(crate) fn plan(targets: &[Target], selected: &[Case], mock: bool) -> Vec<Step> {
    let chosen = |case: &&Case| {
        (selected.is_empty() || selected.contains(case)) && (mock || case.group() != Group::Fault)
    };
    let mut steps = Vec::new();
    for i in 0..targets.len() {
        let own = Case::ALL
            .iter()
            .filter(|c| matches!(c.group(), Group::Provider | Group::Fault));
        steps.extend(own.filter(chosen).map(|&case| Step {
            case,
            on: On::Provider(i),
        }));
    }
    let service = Case::ALL
        .iter()
        .filter(|c| matches!(c.group(), Group::Service | Group::Surface));
    steps.extend(service.filter(chosen).map(|&case| Step {
        case,
        on: On::Service,
    }));
    steps
}

impl Step {
    pub(crate) fn case(self) -> Case {
        self.case
    }

    /// The provider's name, or `service`.
    pub(crate) fn target(self, targets: &[Target]) -> &str {
        match self.on {
            On::Provider(i) => &targets[i].provider,
            On::Service => "service",
        }
    }

    /// The model the step calls when every provider passes: its provider's, or the first's.
    pub(crate) fn model(self, targets: &[Target]) -> &str {
        match self.on {
            On::Provider(i) => &targets[i].model,
            On::Service => &targets[0].model,
        }
    }
}

/// How one provider's own cases went in the current run.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    ran: u32,
    passed: u32,
}

/// The provider the service's cases that need an answer run on: the one that passed the most of
/// its own cases (the first of equals), and never one that ran its cases and passed none. A
/// provider none of whose cases ran (`--cases` chose only the service's) is taken on trust.
fn answering(tallies: &[Tally]) -> Option<usize> {
    tallies
        .iter()
        .enumerate()
        .filter(|(_, t)| t.ran == 0 || t.passed > 0)
        .max_by_key(|&(i, t)| (t.passed, std::cmp::Reverse(i)))
        .map(|(i, _)| i)
}

/// Runs the steps `repeat` times: one report per step, its runs summed up (not yet judged).
pub(crate) async fn run(
    client: &Client,
    settings: &Settings,
    targets: &[Target],
    steps: &[Step],
    repeat: u32,
    bar: &ProgressBar,
) -> Vec<CaseReport> {
    let mut reports: Vec<CaseReport> = steps
        .iter()
        .map(|s| CaseReport::new(s.case.name(), s.target(targets)))
        .collect();
    for _ in 0..repeat {
        let mut tallies = vec![Tally::default(); targets.len()];
        for (step, report) in steps.iter().zip(&mut reports) {
            let model = match (step.on, step.case.needs_an_answer()) {
                (On::Service, true) => answering(&tallies).map(|i| targets[i].model.as_str()),
                (On::Service, false) | (On::Provider(_), _) => Some(step.model(targets)),
            };
            let started = Instant::now();
            let run = match model {
                Some(model) => match step.case.run(client, settings, model).await {
                    Ok(Some(detail)) => Run::Passed(detail),
                    Ok(None) => Run::Skipped("not offered by this service: skipped".into()),
                    Err(reason) => Run::Failed(reason),
                },
                None => Run::Skipped(NO_PROVIDER.into()),
            };
            if let On::Provider(i) = step.on {
                let tally = &mut tallies[i];
                tally.ran += u32::from(!matches!(run, Run::Skipped(_)));
                tally.passed += u32::from(matches!(run, Run::Passed(_)));
            }
            report.record(run, started.elapsed().as_secs_f64());
            bar.inc(1);
        }
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(ran: u32, passed: u32) -> Tally {
        Tally { ran, passed }
    }

    #[test]
    fn the_service_runs_on_the_provider_that_passed_the_most() {
        assert_eq!(answering(&[tally(5, 5), tally(5, 5)]), Some(0));
        assert_eq!(answering(&[tally(5, 0), tally(5, 5)]), Some(1));
        assert_eq!(answering(&[tally(5, 3), tally(5, 4), tally(5, 4)]), Some(1));
        assert_eq!(answering(&[tally(5, 0), tally(5, 0)]), None);
        assert_eq!(answering(&[tally(0, 0), tally(0, 0)]), Some(0));
    }

    fn targets() -> Vec<Target> {
        ["openai", "gemini"]
            .map(|p| Target {
                provider: p.into(),
                model: format!("{p}/m"),
            })
            .to_vec()
    }

    #[test]
    fn the_plan_runs_each_providers_cases_then_the_services() {
        let targets = targets();
        let steps = plan(&targets, &[], false);
        let names: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s.target(&targets), s.case.name()))
            .collect();
        assert_eq!(names.len(), 5 + 5 + 7);
        assert_eq!(names[0], ("openai", "complete"));
        assert_eq!(names[5], ("gemini", "complete"));
        assert_eq!(names[10], ("service", "unknown_model"));
        assert!(names.iter().all(|(_, c)| *c != "retry_transient"));
        assert_eq!(plan(&targets, &[], true).len(), 8 + 8 + 7);
    }

    #[test]
    fn the_plan_keeps_the_chosen_cases_in_the_suites_order() {
        let targets = targets();
        let steps = plan(&targets, &[Case::Deadline, Case::StreamWs], false);
        let names: Vec<(&str, &str)> = steps
            .iter()
            .map(|s| (s.target(&targets), s.case.name()))
            .collect();
        assert_eq!(
            names,
            [
                ("openai", "stream_ws"),
                ("gemini", "stream_ws"),
                ("service", "deadline")
            ]
        );
    }
}
