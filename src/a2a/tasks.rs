//! The tasks this replica runs: each message becomes a task whose call streams through the
//! gateway in a task of its own, so that `CancelTask` (from any connection) can stop it and the
//! caller's connection going away does not. Finished tasks are kept in memory, answer included,
//! up to a bound; after that (or on another replica) `GetTask` reads the ledger, which knows how
//! each ended but never what the model said.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::wire::{State, TaskView};
use crate::context::CallContext;
use crate::error::Error;
use crate::gateway::{CallRequest, Chunk, Gateway};
use crate::ledger::{self, CallRecord};

/// Finished tasks kept with their answers, at most this many and this many bytes of them (a
/// count alone let 10,000 long answers hold gigabytes); older ones are read from the ledger.
const KEPT: usize = 10_000;
const KEPT_BYTES: usize = 64 * 1024 * 1024;
/// What a kept task costs beside its strings: its record, maps and channels.
const TASK_OVERHEAD: usize = 512;

/// One task: its view, updated as the call goes, and the switch that cancels it.
pub struct Task {
    pub id: String,
    pub team_id: Option<String>,
    /// The task as it began (working, no answer yet): what a stream shows first, however far
    /// the task got before the stream's first event left.
    pub begun: TaskView,
    view: Mutex<TaskView>,
    state: watch::Sender<State>,
    cancel: watch::Sender<bool>,
}

impl Task {
    fn lock(&self) -> MutexGuard<'_, TaskView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn view(&self) -> TaskView {
        self.lock().clone()
    }

    /// Waits until the task has ended.
    pub async fn ended(&self) -> TaskView {
        let mut state = self.state.subscribe();
        let _ = state.wait_for(|s| s.is_terminal()).await;
        self.view()
    }

    /// What keeping the task holds, about: its strings (the view's, and the beginning's) and
    /// the rest.
    fn size(&self) -> usize {
        let view = self.lock();
        let (begun, now) = (&self.begun, &*view);
        let strings = [&begun.id, &begun.context_id, &now.id, &now.context_id]
            .into_iter()
            .chain(now.text.as_ref())
            .chain(now.status_text.as_ref())
            .map(String::len)
            .sum::<usize>();
        TASK_OVERHEAD + strings
    }

    /// Asks the task to stop; `false` when it had ended already.
    pub fn cancel(&self) -> bool {
        if self.state.borrow().is_terminal() {
            return false;
        }
        self.cancel.send_replace(true);
        true
    }

    fn append(&self, piece: &str) {
        self.lock()
            .text
            .get_or_insert_with(String::new)
            .push_str(piece);
    }

    fn end(&self, state: State, error: Option<&Error>) {
        {
            let mut view = self.lock();
            view.state = state;
            view.timestamp = now();
            if let Some(err) = error {
                view.status_text = Some(err.message.clone());
                view.metadata
                    .insert("kind".into(), json!(err.kind.as_str()));
            }
            if state == State::Canceled {
                view.status_text = Some("canceled".into());
            }
        }
        self.state.send_replace(state);
    }
}

#[derive(Default)]
struct Registry {
    tasks: HashMap<String, Arc<Task>>,
    /// Finished tasks, oldest first, with their size, to forget beyond `KEPT` or `KEPT_BYTES`.
    finished: VecDeque<(String, usize)>,
    /// The sizes of `finished`, added up.
    finished_bytes: usize,
}

pub struct Tasks {
    registry: Mutex<Registry>,
    /// How many finished tasks are kept, and how many bytes of them.
    kept: (usize, usize),
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            registry: Mutex::default(),
            kept: (KEPT, KEPT_BYTES),
        }
    }
}

impl Tasks {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.lock().tasks.get(id).cloned()
    }

    /// Starts the task's call. Its pieces go to `pieces` when a stream asked for them, which
    /// closes when the task has ended; the task runs to its end whether or not anyone reads.
    pub fn start(
        self: &Arc<Self>,
        gateway: Arc<Gateway>,
        method: &'static str,
        call: CallRequest,
        ctx: CallContext,
        span: tracing::Span,
        pieces: Option<mpsc::Sender<String>>,
    ) -> Arc<Task> {
        let id = ctx.task_id.clone().unwrap_or_default();
        let mut metadata = Map::new();
        metadata.insert("trace_id".into(), Value::String(ctx.trace_id.clone()));
        let view = TaskView {
            id: id.clone(),
            context_id: ctx.a2a.conversation_id.clone().unwrap_or_default(),
            state: State::Working,
            timestamp: now(),
            text: None,
            status_text: None,
            metadata,
        };
        let task = Arc::new(Task {
            id: id.clone(),
            team_id: ctx.caller.as_ref().map(|c| c.team.id.clone()),
            begun: view.clone(),
            view: Mutex::new(view),
            state: watch::Sender::new(State::Working),
            cancel: watch::Sender::new(false),
        });
        self.lock().tasks.insert(id, Arc::clone(&task));
        let (tasks, running) = (Arc::clone(self), Arc::clone(&task));
        let work = async move {
            run(&gateway, method, call, &ctx, &running, pieces).await;
            tasks.finished(&running.id);
        };
        tokio::spawn(work.instrument(span));
        task
    }

    fn finished(&self, id: &str) {
        let mut registry = self.lock();
        let size = registry.tasks.get(id).map_or(0, |task| task.size());
        registry.finished.push_back((id.to_owned(), size));
        registry.finished_bytes += size;
        let (count, bytes) = self.kept;
        while registry.finished.len() > count || registry.finished_bytes > bytes {
            let Some((old, size)) = registry.finished.pop_front() else {
                break;
            };
            registry.finished_bytes -= size;
            registry.tasks.remove(&old);
        }
    }
}

/// Runs the call of a task to its end: completed, failed or canceled.
async fn run(
    gateway: &Gateway,
    method: &'static str,
    call: CallRequest,
    ctx: &CallContext,
    task: &Task,
    pieces: Option<mpsc::Sender<String>>,
) {
    let mut cancel = task.cancel.subscribe();
    let started = tokio::select! {
        started = gateway.stream(method, call, ctx) => started,
        _ = cancel.wait_for(|c| *c) => {
            task.end(State::Canceled, None);
            return;
        }
    };
    let mut chunks = match started {
        Ok(chunks) => chunks,
        Err(err) => {
            task.end(State::Failed, Some(&err));
            return;
        }
    };
    loop {
        let chunk = tokio::select! {
            chunk = chunks.next() => chunk,
            // Dropping the stream drops the upstream request, which the ledger records as
            // cancelled.
            _ = cancel.wait_for(|c| *c) => {
                drop(chunks);
                task.end(State::Canceled, None);
                break;
            }
        };
        match chunk {
            Some(Chunk::Delta(piece)) => {
                task.append(&piece);
                if let Some(pieces) = &pieces {
                    // A slow reader holds the upstream back (the channel is bounded); one that
                    // went away does not stop the task: it can be read with GetTask.
                    let _ = pieces.send(piece).await;
                }
            }
            Some(Chunk::ToolCall(_)) => {}
            Some(Chunk::Done(summary)) => {
                let mut view = task.lock();
                view.metadata
                    .insert("model".into(), json!(summary.route.model));
                view.metadata
                    .insert("provider".into(), json!(summary.route.provider));
                view.metadata.insert("usage".into(), json!(summary.usage));
                drop(view);
                task.end(State::Completed, None);
                break;
            }
            Some(Chunk::Failed(err)) => {
                task.end(State::Failed, Some(&err));
                break;
            }
            None => {
                task.end(State::Completed, None);
                break;
            }
        }
    }
}

/// A task this replica no longer holds, as the ledger recorded its call: how it ended, not
/// what the model said.
pub fn from_record(record: &CallRecord) -> TaskView {
    let state = match record.status.as_str() {
        "ok" => State::Completed,
        "cancelled" => State::Canceled,
        _ => State::Failed,
    };
    let mut metadata = Map::new();
    metadata.insert("trace_id".into(), json!(record.trace_id));
    if state == State::Failed {
        metadata.insert("kind".into(), json!(record.status));
    }
    if let (Some(provider), Some(model)) = (&record.provider, &record.model) {
        metadata.insert("provider".into(), json!(provider));
        metadata.insert("model".into(), json!(model));
    }
    TaskView {
        id: record.task_id.clone().unwrap_or_default(),
        context_id: record.conversation_id.clone().unwrap_or_default(),
        state,
        timestamp: ledger::format_rfc3339(record.finished_at).unwrap_or_default(),
        text: None,
        status_text: record.error_message.clone(),
        metadata,
    }
}

fn now() -> String {
    ledger::format_rfc3339(ledger::now_ms()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished_task(tasks: &Tasks, id: &str, answer_bytes: usize) {
        let view = TaskView {
            id: id.to_owned(),
            context_id: String::new(),
            state: State::Completed,
            timestamp: now(),
            text: Some("x".repeat(answer_bytes)),
            status_text: None,
            metadata: Map::new(),
        };
        let task = Task {
            id: id.to_owned(),
            team_id: None,
            begun: view.clone(),
            view: Mutex::new(view),
            state: watch::Sender::new(State::Completed),
            cancel: watch::Sender::new(false),
        };
        tasks.lock().tasks.insert(id.to_owned(), Arc::new(task));
        tasks.finished(id);
    }

    /// 169 KB answers once filled the 10,000 kept tasks with gigabytes: the bytes bound them too,
    /// the oldest forgotten first.
    #[test]
    fn kept_tasks_are_bounded_in_bytes_as_well_as_in_count() {
        let tasks = Tasks {
            registry: Mutex::default(),
            kept: (100, 1_000_000),
        };
        for i in 0..20 {
            finished_task(&tasks, &format!("t{i}"), 169_000);
        }
        let registry = tasks.lock();
        assert!(
            registry.finished_bytes <= 1_000_000,
            "{}",
            registry.finished_bytes
        );
        assert_eq!(registry.tasks.len(), 5);
        assert!(registry.tasks.contains_key("t19") && !registry.tasks.contains_key("t14"));
        drop(registry);

        for i in 0..300 {
            finished_task(&tasks, &format!("s{i}"), 10);
        }
        assert_eq!(tasks.lock().tasks.len(), 100);
    }
}
