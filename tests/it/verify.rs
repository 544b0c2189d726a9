//! `llmrpc verify` run as a CI job runs it: the binary, with nothing in its environment, from a
//! temp dir, against services started here: on `llmrpc mock-upstream` (started here too), or on
//! wiremock where a provider has to misbehave in a way the mock's model-name options cannot ask
//! for (a case that fails on one run of two).
//!
//! Every run that passes `--mock` also makes the `deadline` case deterministic (the mock is asked
//! for a slow answer); the wiremock upstreams answer after a delay for the same reason.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The cases of a `--mock` run with all three providers: 8 per provider, 7 of the service.
const ALL_CASES: usize = 31;
const PROVIDER_CASES: [&str; 8] = [
    "complete",
    "stream_ws",
    "stream_sse",
    "trace_roundtrip",
    "usage_and_cost",
    "retry_transient",
    "rate_limit_retry_after",
    "stream_drop",
];
const SERVICE_CASES: [&str; 7] = [
    "unknown_model",
    "invalid_params",
    "deadline",
    "concurrent",
    "health_ready_metrics",
    "openai_compat",
    "a2a",
];

// ---------------------------------------------------------------------------------------------
// The processes

/// `llmrpc mock-upstream` on a free port, killed when dropped.
struct MockUpstream {
    child: Child,
    addr: String,
}

impl MockUpstream {
    fn start() -> MockUpstream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
            .args(["mock-upstream", "--addr", "127.0.0.1:0"])
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn llmrpc mock-upstream");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(addr) = first.strip_prefix("mock upstream listening on ") else {
            let _ = child.kill();
            panic!("mock-upstream did not start: {first:?}");
        };
        let addr = addr.trim().to_owned();
        // Keep its stderr drained, whatever else it prints.
        std::thread::spawn(move || lines.for_each(drop));
        MockUpstream { child, addr }
    }

    /// The variables that point all three providers at the mock, with dummy keys.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OPENAI_BASE_URL", format!("http://{}/v1", self.addr)),
            ("OPENAI_API_KEY", "mock".into()),
            ("ANTHROPIC_BASE_URL", format!("http://{}", self.addr)),
            ("ANTHROPIC_API_KEY", "mock".into()),
            ("GEMINI_BASE_URL", format!("http://{}", self.addr)),
            ("GEMINI_API_KEY", "mock".into()),
        ]
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(env: &[(&'static str, String)]) -> Service {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Service::start_with(&env)
}

/// One run of `llmrpc verify`.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// The temp dir it ran in, where `junit.xml` is written when asked for.
    dir: TempDir,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }

    fn junit(&self) -> Suite {
        let path = self.dir.path().join("junit.xml");
        let xml = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), self.describe()));
        parse_junit(&xml)
    }

    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `llmrpc verify <args>`, with nothing in its environment, from a fresh temp dir; `--report`
/// arguments named `junit.xml` land in that dir. Blocking: call it from a thread when this
/// process serves the upstream (wiremock), see [`verify_async`].
fn verify(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .arg("verify")
        .args(args)
        .env_clear()
        .current_dir(dir.path())
        .output()
        .expect("run llmrpc verify");
    Run {
        code: out.status.code().expect("verify exited by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        dir,
    }
}

async fn verify_async(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        verify(&args)
    })
    .await
    .unwrap()
}

/// The summary's results by `target/case`, sorted.
fn results(summary: &Value) -> BTreeMap<String, Value> {
    summary["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let key = format!(
                "{}/{}",
                r["target"].as_str().unwrap(),
                r["case"].as_str().unwrap()
            );
            (key, r.clone())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// JUnit XML, read back by a parser just strict enough to catch a malformed report: balanced
// tags, quoted attributes, the five entities, one root.

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> &str {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("<{}> has no {name}: {self:?}", self.name))
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

fn unescape(s: &str) -> String {
    assert!(
        !s.contains('<'),
        "an unescaped < in text or attribute: {s:?}"
    );
    let out = s
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'");
    // Any other & must be &amp;.
    let mut rest = out.as_str();
    while let Some(i) = rest.find('&') {
        assert!(rest[i..].starts_with("&amp;"), "a bare & in {s:?}");
        rest = &rest[i + 5..];
    }
    out.replace("&amp;", "&")
}

fn parse_tag(inner: &str) -> Element {
    let inner = inner.trim();
    let (name, mut rest) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
    let mut element = Element {
        name: name.to_owned(),
        ..Element::default()
    };
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return element;
        }
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("a malformed attribute in <{inner}>"));
        let (value, after) = after
            .split_once('"')
            .unwrap_or_else(|| panic!("an unterminated attribute in <{inner}>"));
        let old = element.attrs.insert(key.trim().to_owned(), unescape(value));
        assert!(old.is_none(), "a repeated attribute {key} in <{inner}>");
        rest = after;
    }
}

/// The document's root element.
fn parse_xml(xml: &str) -> Element {
    let mut rest = xml.trim_start();
    if let Some(after) = rest.strip_prefix("<?xml") {
        rest = &after[after.find("?>").expect("an unterminated declaration") + 2..];
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let lt = rest.find('<');
        let text = &rest[..lt.unwrap_or(rest.len())];
        match stack.last_mut() {
            Some(open) => open.text.push_str(&unescape(text)),
            None => assert!(text.trim().is_empty(), "text outside the root: {text:?}"),
        }
        let Some(lt) = lt else { break };
        let gt = rest[lt..].find('>').expect("an unterminated tag") + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let element = stack.pop().expect("a closing tag with nothing open");
            assert_eq!(element.name, name.trim(), "mismatched closing tag");
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => {
                    assert!(root.is_none(), "more than one root");
                    root = Some(element);
                }
            }
        } else if let Some(inner) = tag.strip_suffix('/') {
            let element = parse_tag(inner);
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => {
                    assert!(root.is_none(), "more than one root");
                    root = Some(element);
                }
            }
        } else {
            stack.push(parse_tag(tag));
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    root.expect("no root element")
}

/// A JUnit report's one testsuite.
struct Suite {
    tests: usize,
    failures: usize,
    skipped: usize,
    cases: Vec<JunitCase>,
}

#[derive(Debug)]
struct JunitCase {
    classname: String,
    name: String,
    /// The failure's message and text.
    failure: Option<(String, String)>,
    skipped: bool,
}

fn parse_junit(xml: &str) -> Suite {
    let root = parse_xml(xml);
    assert_eq!(root.name, "testsuite", "the root is not one testsuite");
    let number = |name: &str| -> usize {
        root.attr(name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a count"))
    };
    let cases = root
        .children
        .iter()
        .map(|c| {
            assert_eq!(
                c.name, "testcase",
                "a testsuite child that is not a testcase"
            );
            JunitCase {
                classname: c.attr("classname").to_owned(),
                name: c.attr("name").to_owned(),
                failure: c
                    .child("failure")
                    .map(|f| (f.attr("message").to_owned(), f.text.clone())),
                skipped: c.child("skipped").is_some(),
            }
        })
        .collect();
    Suite {
        tests: number("tests"),
        failures: number("failures"),
        skipped: number("skipped"),
        cases,
    }
}

#[test]
fn the_junit_reader_reads_escapes_and_rejects_malformed_reports() {
    let suite = parse_junit(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"x\" tests=\"2\" failures=\"1\" skipped=\"0\" time=\"0.1\">\n  <testcase classname=\"llmrpc.verify.openai\" name=\"complete\" time=\"0.1\"/>\n  <testcase classname=\"llmrpc.verify.service\" name=\"a2a\" time=\"0\">\n    <failure message=\"0/1 runs passed\">got &lt;x&gt; &amp; &quot;y&quot;</failure>\n  </testcase>\n</testsuite>\n",
    );
    assert_eq!((suite.tests, suite.failures, suite.cases.len()), (2, 1, 2));
    assert_eq!(
        suite.cases[1].failure,
        Some(("0/1 runs passed".into(), "got <x> & \"y\"".into()))
    );
    for bad in [
        "<testsuite tests=\"1\"><testcase></testsuite>",
        "<testsuite tests=\"1\"/><testsuite tests=\"1\"/>",
        "<testsuite tests=\"1\">a & b</testsuite>",
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_xml(bad)).is_err(),
            "accepted {bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The suite

/// (a) The CI job: a service on the mock with all three providers, `--mock`, a JUnit report and
/// the JSON summary. Also `--providers` narrowing the run and `--concurrency 0`.
#[test]
fn a_service_on_the_mock_passes_every_case_with_a_junit_report() {
    let mock = MockUpstream::start();
    let service = start_service(&mock.env());
    let url = service.url();
    let run = verify(&[
        "--url",
        &url,
        "--mock",
        "--report",
        "junit.xml",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.describe());
    // The bound of what a live run may cost, before it starts (the default --concurrency 100).
    assert!(
        run.stderr.contains(&format!(
            "verify {url}: {ALL_CASES} cases × 1 run(s), at most {} model calls of ≤ 16 output tokens: ≤ ",
            ALL_CASES + 100
        )) && run.stderr.contains(" USD at list prices"),
        "{}",
        run.describe()
    );

    let summary = run.json();
    assert_eq!(summary["ok"], true, "{summary:#}");
    assert_eq!(summary["cases"], ALL_CASES);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["repeat"], 1);
    assert_eq!(summary["min_success"], 1.0);
    assert_eq!(summary["url"], url);
    let results = results(&summary);
    assert_eq!(results.len(), ALL_CASES, "{results:#?}");
    for provider in ["openai", "anthropic", "gemini"] {
        for case in PROVIDER_CASES {
            let r = &results[&format!("{provider}/{case}")];
            assert_eq!(
                (&r["ok"], &r["runs"], &r["passed"], &r["success_rate"]),
                (&json!(true), &json!(1), &json!(1), &json!(1.0)),
                "{r}"
            );
        }
    }
    for case in SERVICE_CASES {
        assert_eq!(results[&format!("service/{case}")]["ok"], true);
    }
    assert!(
        results["openai/retry_transient"]["detail"]
            .as_str()
            .unwrap()
            .contains("after 4 attempts")
    );
    assert!(
        results["service/concurrent"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("100/100 answered")
    );

    let junit = run.junit();
    assert_eq!(
        (junit.tests, junit.failures, junit.skipped),
        (ALL_CASES, 0, 0)
    );
    let mut seen: Vec<(String, String)> = junit
        .cases
        .iter()
        .map(|c| {
            assert!(c.failure.is_none() && !c.skipped, "{c:?}");
            (c.classname.clone(), c.name.clone())
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = results
        .values()
        .map(|r| {
            (
                format!("llmrpc.verify.{}", r["target"].as_str().unwrap()),
                r["case"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(seen, expected);

    // One provider, and no concurrent calls: the case passes with nothing sent.
    let run = verify(&[
        "--url",
        &url,
        "--mock",
        "--providers",
        "gemini",
        "--concurrency",
        "0",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let summary = run.json();
    assert_eq!(summary["cases"], 8 + 7);
    let results = self::results(&summary);
    assert!(
        results
            .keys()
            .all(|k| !k.starts_with("openai/") && !k.starts_with("anthropic/"))
    );
    assert_eq!(
        results["service/concurrent"]["detail"],
        "0/0 answered, p50 0 ms, p99 0 ms"
    );
}

/// (b) One provider down: its cases fail with their reasons and trace ids, the others pass,
/// verify exits 1 and the JUnit report has a failure for each of that provider's cases only.
#[test]
fn a_broken_provider_fails_its_cases_only() {
    let mock = MockUpstream::start();
    let mut env = mock.env();
    let closed = ClosedPort::new();
    for (name, value) in &mut env {
        if *name == "ANTHROPIC_BASE_URL" {
            *value = closed.url();
        }
    }
    let service = start_service(&env);
    let run = verify(&[
        "--url",
        &service.url(),
        "--mock",
        "--concurrency",
        "10",
        "--report",
        "junit.xml",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stderr
            .contains(&format!("8 of {ALL_CASES} cases below 100 % success")),
        "{}",
        run.describe()
    );
    let summary = run.json();
    assert_eq!(
        (&summary["ok"], &summary["failed"]),
        (&json!(false), &json!(8))
    );
    for (key, r) in results(&summary) {
        let broken = key.starts_with("anthropic/");
        assert_eq!(r["ok"], !broken, "{r}");
        if broken {
            assert_eq!((&r["runs"], &r["passed"]), (&json!(1), &json!(0)), "{r}");
            // The reason, with the trace id to look the call up by.
            let detail = r["detail"].as_str().unwrap();
            assert!(
                detail.contains("-32004") && detail.contains("verify-"),
                "{key}: {detail}"
            );
        }
    }

    let junit = run.junit();
    assert_eq!((junit.tests, junit.failures), (ALL_CASES, 8));
    let failed: Vec<&str> = junit
        .cases
        .iter()
        .filter(|c| c.failure.is_some())
        .map(|c| {
            assert_eq!(c.classname, "llmrpc.verify.anthropic", "{c:?}");
            let (message, text) = c.failure.as_ref().unwrap();
            assert_eq!(message, "0/1 runs passed");
            assert!(!text.is_empty(), "{c:?}");
            c.name.as_str()
        })
        .collect();
    assert_eq!(failed, PROVIDER_CASES);
}

/// The service on the mock with the providers named in `broken` pointed at `closed`.
fn service_with_broken(mock: &MockUpstream, broken: &[&str], closed: &ClosedPort) -> Service {
    let mut env = mock.env();
    for (name, value) in &mut env {
        if broken
            .iter()
            .any(|p| name.starts_with(&p.to_uppercase()) && name.ends_with("_BASE_URL"))
        {
            *value = closed.url();
        }
    }
    start_service(&env)
}

/// The service's cases that call a model, which run on a provider whose own cases passed.
const ANSWERED_SERVICE_CASES: [&str; 4] = ["deadline", "concurrent", "openai_compat", "a2a"];

/// (b') The service's cases do not depend on the first provider: with OpenAI (the first) down,
/// only its own cases fail and the service's pass on another provider; with every provider down,
/// those of the service's cases that need an answer are skipped, saying why, and the others
/// (which call no provider) still pass.
#[test]
fn the_service_cases_run_on_a_provider_that_passed_or_are_skipped() {
    let mock = MockUpstream::start();
    let verify_all = |url: &str| {
        verify(&[
            "--url",
            url,
            "--mock",
            "--concurrency",
            "10",
            "--report",
            "junit.xml",
            "--output",
            "json",
        ])
    };

    let closed = ClosedPort::new();
    let service = service_with_broken(&mock, &["openai"], &closed);
    let run = verify_all(&service.url());
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stderr
            .contains(&format!("8 of {ALL_CASES} cases below 100 % success")),
        "{}",
        run.describe()
    );
    let summary = run.json();
    // OpenAI is the first provider, the one the service's cases were once pinned to.
    assert_eq!(summary["results"][0]["target"], "openai", "{summary:#}");
    let results = results(&summary);
    for (key, r) in &results {
        let broken = key.starts_with("openai/");
        assert_eq!(r["ok"], !broken, "{key}: {r}");
        assert_eq!(
            (&r["runs"], &r["passed"]),
            (&json!(1), &json!(u8::from(!broken))),
            "{key}: {r}"
        );
    }
    for case in SERVICE_CASES {
        assert_eq!(results[&format!("service/{case}")]["ok"], true);
    }
    // The OpenAI-compatible surface answered with the next provider's model, Anthropic's.
    let openai_compat = results["service/openai_compat"]["detail"].as_str().unwrap();
    assert!(openai_compat.contains("claude"), "{openai_compat}");
    let junit = run.junit();
    assert_eq!(
        (junit.tests, junit.failures, junit.skipped),
        (ALL_CASES, 8, 0)
    );
    assert!(
        junit
            .cases
            .iter()
            .filter(|c| c.failure.is_some())
            .all(|c| c.classname == "llmrpc.verify.openai")
    );
    drop(service);

    let service = service_with_broken(&mock, &["openai", "anthropic", "gemini"], &closed);
    let run = verify_all(&service.url());
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stderr
            .contains(&format!("24 of {ALL_CASES} cases below 100 % success")),
        "{}",
        run.describe()
    );
    let reason = "no provider passed any of its own cases in this run: skipped";
    let results = self::results(&run.json());
    for (key, r) in &results {
        let (target, case) = key.split_once('/').unwrap();
        match (target, ANSWERED_SERVICE_CASES.contains(&case)) {
            ("service", true) => assert_eq!(
                (&r["ok"], &r["runs"], &r["success_rate"], &r["detail"]),
                (&json!(true), &json!(0), &json!(1.0), &json!(reason)),
                "{key}: {r}"
            ),
            ("service", false) => assert_eq!(
                (&r["ok"], &r["runs"]),
                (&json!(true), &json!(1)),
                "{key}: {r}"
            ),
            _ => assert_eq!(
                (&r["ok"], &r["passed"]),
                (&json!(false), &json!(0)),
                "{key}: {r}"
            ),
        }
    }
    let junit = run.junit();
    assert_eq!(
        (junit.tests, junit.failures, junit.skipped),
        (ALL_CASES, 24, 4)
    );
    let mut skipped: Vec<&str> = junit
        .cases
        .iter()
        .filter(|c| c.skipped)
        .map(|c| {
            assert_eq!(c.classname, "llmrpc.verify.service", "{c:?}");
            c.name.as_str()
        })
        .collect();
    skipped.sort_unstable();
    let mut expected = ANSWERED_SERVICE_CASES;
    expected.sort_unstable();
    assert_eq!(skipped, expected);
    let xml = std::fs::read_to_string(run.dir.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains(&format!("<skipped message=\"{reason}\"/>")),
        "{xml}"
    );
}

/// An OpenAI upstream that answers everything, after a delay (so that the 1 ms `deadline` case
/// always times out first), except that every second A2A task's call is refused with a 400: a
/// case that fails on one run of two. The A2A agent's calls are the streamed ones that do not
/// carry a trace id of verify's (`verify-…`) in `x-request-id`; a retry of a call keeps its fate.
async fn flaky_a2a_upstream() -> MockServer {
    let upstream = MockServer::start().await;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let delay = Duration::from_millis(50);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(move |req: &Request| {
            let trace = req
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let ok = ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&["hel", "lo"]))
                .set_delay(delay);
            if trace.starts_with("verify-") {
                return ok;
            }
            let mut seen = seen.lock().unwrap();
            let next = seen.len();
            match *seen.entry(trace).or_insert(next) % 2 {
                0 => ok,
                _ => ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "message": "refused by the test", "type": "invalid_request_error",
                    "param": null, "code": null}})),
            }
        })
        .with_priority(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion_body("hello there"))
                .set_delay(delay),
        )
        .with_priority(2)
        .mount(&upstream)
        .await;
    upstream
}

/// (c) `--repeat` and `--min-success`: a case that passes one run of two passes at 0.5 and fails
/// at 1.0, and only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_success_is_a_threshold_on_each_case_over_its_runs() {
    let upstream = flaky_a2a_upstream().await;
    let service = Service::start(&upstream, &[]);
    let url = service.url();
    let common = ["--url", &url, "--repeat", "2", "--concurrency", "5"];

    let run =
        verify_async(&[&common[..], &["--min-success", "0.5", "--output", "json"]].concat()).await;
    assert_eq!(run.code, 0, "{}", run.describe());
    let summary = run.json();
    assert_eq!(
        (
            &summary["ok"],
            &summary["failed"],
            &summary["repeat"],
            &summary["min_success"]
        ),
        (&json!(true), &json!(0), &json!(2), &json!(0.5)),
        "{summary:#}"
    );
    for (key, r) in results(&summary) {
        let expected = match key.as_str() {
            "service/a2a" => (1, 0.5),
            _ => (2, 1.0),
        };
        assert_eq!(
            (&r["runs"], &r["passed"], &r["success_rate"], &r["ok"]),
            (
                &json!(2),
                &json!(expected.0),
                &json!(expected.1),
                &json!(true)
            ),
            "{key}: {r}"
        );
    }

    let run = verify_async(
        &[
            &common[..],
            &[
                "--min-success",
                "1.0",
                "--report",
                "junit.xml",
                "--output",
                "json",
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(
        run.stderr.contains("1 of 12 cases below 100 % success"),
        "{}",
        run.describe()
    );
    let summary = run.json();
    assert_eq!(
        (&summary["ok"], &summary["failed"]),
        (&json!(false), &json!(1))
    );
    let results = results(&summary);
    let a2a = &results["service/a2a"];
    assert_eq!(
        (
            &a2a["runs"],
            &a2a["passed"],
            &a2a["success_rate"],
            &a2a["ok"]
        ),
        (&json!(2), &json!(1), &json!(0.5), &json!(false)),
        "{a2a}"
    );
    // The reason is the last run's: the refused task.
    assert!(
        a2a["detail"]
            .as_str()
            .unwrap()
            .contains("refused by the test"),
        "{a2a}"
    );
    assert!(
        results
            .iter()
            .all(|(k, r)| k == "service/a2a" || r["ok"] == true)
    );
    let junit = run.junit();
    assert_eq!((junit.tests, junit.failures), (12, 1));
    let failed: Vec<_> = junit.cases.iter().filter(|c| c.failure.is_some()).collect();
    assert_eq!(
        (failed[0].classname.as_str(), failed[0].name.as_str()),
        ("llmrpc.verify.service", "a2a")
    );
    assert_eq!(failed[0].failure.as_ref().unwrap().0, "1/2 runs passed");
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}/llmrpc.db", dir.display())
}

/// The first admin key, made on the database before the service starts, as an operator would.
fn first_admin_key(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_llmrpc"))
        .args([
            "admin", "keys", "create", "--team", "ops", "--role", "admin",
        ])
        .env_clear()
        .env("LLMRPC_DATABASE_URL", database_url(dir))
        .current_dir(dir)
        .output()
        .expect("run llmrpc admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// (d) A service that requires keys: without one (or with an unknown one) verify stops before
/// any case with exit 3, the auth class; with the admin key every case passes.
#[test]
fn a_service_with_keys_needs_the_key() {
    let mock = MockUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let key = first_admin_key(dir.path());
    let mut env = mock.env();
    env.push(("LLMRPC_DATABASE_URL", database_url(dir.path())));
    let service = start_service(&env);
    let url = service.url();
    let args = [
        "--url",
        &url,
        "--mock",
        "--concurrency",
        "10",
        "--report",
        "junit.xml",
        "--output",
        "json",
    ];

    let run = verify(&args);
    assert_eq!(run.code, 3, "{}", run.describe());
    assert!(
        run.stderr
            .contains("llm.models failed: this service needs a caller key"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.is_empty(), "{}", run.describe());
    assert!(!run.dir.path().join("junit.xml").exists());

    let unknown = "llmrpc-00000000000000000000000000000000deadbeef";
    let run = verify(&[&args[..], &["--key", unknown]].concat());
    assert_eq!(run.code, 3, "{}", run.describe());
    assert!(
        run.stderr.contains("this caller key is not known here"),
        "{}",
        run.describe()
    );

    let run = verify(&[&args[..], &["--key", &key]].concat());
    assert_eq!(run.code, 0, "{}", run.describe());
    let summary = run.json();
    assert_eq!(
        (&summary["ok"], &summary["cases"]),
        (&json!(true), &json!(ALL_CASES)),
        "{summary:#}"
    );
    assert_eq!((run.junit().tests, run.junit().failures), (ALL_CASES, 0));
    // The key never shows in what verify prints.
    assert!(!run.stdout.contains(&key) && !run.stderr.contains(&key));
}

/// (e) `--dry-run` lists the cases with their targets and models and calls no provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_the_cases_and_calls_no_provider() {
    let upstream = MockServer::start().await;
    mount_openai(&upstream, "hello there", &["hel", "lo"]).await;
    let service = Service::start(&upstream, &[]);
    let url = service.url();
    let run = verify_async(&[
        "--url",
        &url,
        "--mock",
        "--dry-run",
        "--models",
        "openai=gpt-4.1-mini",
        "--report",
        "junit.xml",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.describe());
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected: Vec<Vec<&str>> = PROVIDER_CASES
        .iter()
        .map(|case| vec!["openai", case, "openai/gpt-4.1-mini"])
        .chain(
            SERVICE_CASES
                .iter()
                .map(|case| vec!["service", case, "openai/gpt-4.1-mini"]),
        )
        .collect();
    assert_eq!(lines, expected, "{}", run.describe());
    assert!(
        run.stderr
            .contains("15 cases × 1 run(s), at most 115 model calls"),
        "{}",
        run.describe()
    );
    assert!(!run.dir.path().join("junit.xml").exists());

    // `--cases` keeps the suite's order, whatever the order it names them in.
    let run = verify_async(&["--url", &url, "--dry-run", "--cases", "deadline,stream_sse"]).await;
    assert_eq!(run.code, 0, "{}", run.describe());
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            ["openai", "stream_sse", "openai/gpt-5-mini"],
            ["service", "deadline", "openai/gpt-5-mini"]
        ],
        "{}",
        run.describe()
    );
    assert!(
        received(&upstream).await.is_empty(),
        "the upstream was called"
    );
}

/// A case named wrong on `--cases` is a usage error that lists the names, and so is a fault
/// case without `--mock`: both before any call.
#[test]
fn a_misspelled_case_is_a_usage_error_naming_the_cases() {
    let run = verify(&[
        "--url",
        &ClosedPort::new().url(),
        "--cases",
        "complete,stream_dorp",
    ]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(
        run.stderr
            .contains("invalid value 'stream_dorp' for '--cases")
            && PROVIDER_CASES
                .iter()
                .chain(&SERVICE_CASES)
                .all(|c| run.stderr.contains(c)),
        "{}",
        run.describe()
    );

    let run = verify(&["--url", &ClosedPort::new().url(), "--cases", "stream_drop"]);
    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(
        run.stderr
            .contains("the fault case stream_drop needs --mock"),
        "{}",
        run.describe()
    );
}

/// (f) Nothing listening at `--url`: exit 6, before any case.
#[test]
fn an_unreachable_service_exits_6() {
    let closed = ClosedPort::new();
    let url = closed.url();
    let run = verify(&["--url", &url, "--report", "junit.xml", "--output", "json"]);
    assert_eq!(run.code, 6, "{}", run.describe());
    assert!(
        run.stderr.contains(&format!("cannot reach {url}")),
        "{}",
        run.describe()
    );
    assert!(run.stdout.is_empty());
    assert!(!run.dir.path().join("junit.xml").exists());
}

/// `--repeat 0` would run nothing and pass: it is a usage error.
#[test]
fn repeat_zero_is_a_usage_error() {
    let run = verify(&["--url", &ClosedPort::new().url(), "--repeat", "0"]);
    assert_eq!(run.code, 2, "{}", run.describe());
}

/// An OpenAI upstream whose whole answers are empty, finishing with `finish`, after a delay (for
/// the `deadline` case); its streams answer as usual.
async fn mount_empty_answers(upstream: &MockServer, finish: &str) {
    let mut body = completion_body("");
    body["choices"][0]["finish_reason"] = json!(finish);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(stream_body(&["hel", "lo"])),
        )
        .with_priority(1)
        .mount(upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(body)
                .set_delay(Duration::from_millis(50)),
        )
        .with_priority(2)
        .mount(upstream)
        .await;
}

/// A reasoning model may spend verify's small token cap before any text: an empty answer that
/// finished with `length` is a whole round trip and passes; an empty answer that says it is
/// finished does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_answer_passes_only_when_the_token_cap_cut_it() {
    let upstream = MockServer::start().await;
    mount_empty_answers(&upstream, "length").await;
    let service = Service::start(&upstream, &[]);
    let url = service.url();
    let args = ["--url", &url, "--concurrency", "5", "--output", "json"];

    let run = verify_async(&args).await;
    assert_eq!(run.code, 0, "{}", run.describe());
    let by_case = results(&run.json());
    for case in ["openai/complete", "service/openai_compat"] {
        let detail = by_case[case]["detail"].as_str().unwrap();
        assert!(
            detail.ends_with("no text before the token cap (finish_reason length)"),
            "{case}: {detail}"
        );
    }

    upstream.reset().await;
    mount_empty_answers(&upstream, "stop").await;
    let run = verify_async(&args).await;
    assert_eq!(run.code, 1, "{}", run.describe());
    let failed: Vec<String> = results(&run.json())
        .into_iter()
        .filter(|(_, r)| r["ok"] == false)
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        failed,
        [
            "openai/complete",
            "service/concurrent",
            "service/openai_compat"
        ],
        "{}",
        run.describe()
    );
}

/// Behind a load balancer `ops.trace` may reach a replica whose ledger has not yet received the
/// call another replica served (it is written within ~250 ms): `trace_roundtrip` asks again
/// rather than failing at once. The "service" here is a wiremock that answers `ops.trace` with
/// nothing twice, then with the call; only that case is looked at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_roundtrip_waits_for_a_record_still_on_its_way() {
    let fake = MockServer::start().await;
    let rpc = |method_name: &str| {
        Mock::given(method("POST"))
            .and(path("/"))
            .and(body_partial_json(json!({"method": method_name})))
    };
    rpc("llm.models")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1,
            "result": {"models": [{"id": "openai/gpt-4.1-mini", "provider": "openai",
                                   "configured": true, "aliases": ["fast"]}]}})),
        )
        .mount(&fake)
        .await;
    rpc("llm.complete")
        .respond_with(|req: &Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let trace = body["params"]["a2a_context"]["trace_id"].clone();
            ResponseTemplate::new(200).set_body_json(json!({"jsonrpc": "2.0", "id": 1,
                "result": {"trace_id": trace, "content": "hi", "provider": "openai"}}))
        })
        .mount(&fake)
        .await;
    let asked = Arc::new(Mutex::new(0));
    let count = Arc::clone(&asked);
    rpc("ops.trace")
        .respond_with(move |_: &Request| {
            let mut asked = count.lock().unwrap();
            *asked += 1;
            let calls = match *asked {
                1 | 2 => json!([]),
                _ => json!([{"attempts": [{"status": "ok"}]}]),
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"jsonrpc": "2.0", "id": 1, "result": calls}))
        })
        .mount(&fake)
        .await;

    let run = verify_async(&[
        "--url",
        &fake.uri(),
        "--concurrency",
        "0",
        "--output",
        "json",
    ])
    .await;
    let results = results(&run.json());
    let case = &results["openai/trace_roundtrip"];
    assert_eq!(
        (&case["ok"], &case["detail"]),
        (&json!(true), &json!("found with 1 attempt(s)")),
        "{}",
        run.describe()
    );
    // Asked three times by this case, then once more by usage_and_cost.
    assert!(*asked.lock().unwrap() >= 3);
}
