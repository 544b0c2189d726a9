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

/// Finished tasks kept with their answers; older ones are read from the ledger.
const KEPT: usize = 10_000;

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
    /// Finished tasks, oldest first, to forget beyond `KEPT`.
    finished: VecDeque<String>,
}

#[derive(Default)]
pub struct Tasks {
    registry: Mutex<Registry>,
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
        registry.finished.push_back(id.to_owned());
        while registry.finished.len() > KEPT {
            if let Some(old) = registry.finished.pop_front() {
                registry.tasks.remove(&old);
            }
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
