//! Running handlers. A single request's handler is polled first on the
//! connection's driver and gets a task of its own only if it has to wait; a
//! stream's handler always gets a task. A handler's future is dropped when its
//! call is cancelled, and its outcome (value, error or panic) becomes the
//! call's answer.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::future::{select, Either};
use futures_util::FutureExt;
use grid_proto::{CallId, Error, IncomingCall};
use tracing::Instrument;

use crate::driver::Host;
use crate::handler::{Ctx, HandlerId};
use crate::router::Router;
use crate::runtime::Runtime;
use crate::shared::{Dispatched, IncomingSlot, Shared, StreamSlot};
use crate::stream::Stream;
use crate::telemetry::{CallKind, CallObserver, Side, Telemetry};

/// Starts handlers for the calls a connection's driver received.
pub(crate) struct Serve<R: Runtime> {
    pub(crate) runtime: R,
    pub(crate) router: Arc<Router>,
    pub(crate) telemetry: Arc<Telemetry>,
}

impl<R: Runtime> Host for Serve<R> {
    fn on_dispatched(&self, shared: &Arc<Shared>, dispatched: &mut Dispatched) {
        let peer = &dispatched.peer_name;
        for call in dispatched.requests.drain(..) {
            if let Some(answer) = self.start_single(shared, peer, call) {
                dispatched.answers.push(answer);
            }
        }
        for call in dispatched.streams.drain(..) {
            self.start_stream(shared, peer, call);
        }
    }
}

impl<R: Runtime> Serve<R> {
    fn context(&self, shared: &Arc<Shared>, peer: &Arc<str>, call: &IncomingCall) -> Ctx {
        Ctx {
            peer: peer.clone(),
            subroute: call.subroute.clone(),
            deadline: call.deadline,
            id: call.id,
            shared: shared.clone(),
        }
    }

    fn observe(&self, shared: &Shared, kind: CallKind, handler: Option<HandlerId>) -> CallObserver {
        self.telemetry
            .start_now(Side::Incoming, kind, handler, shared.clock())
    }

    /// Starts the handler of a single request whose cancellation slot is in
    /// place; returns its answer if it had one without waiting.
    fn start_single(
        &self,
        shared: &Arc<Shared>,
        peer: &Arc<str>,
        call: IncomingCall,
    ) -> Option<(CallId, Result<Bytes, Error>)> {
        let route = (call.handler, &call.subroute);
        let Some(function) = self.router.find_single(route.0, route.1).cloned() else {
            let error = Error::UnknownHandler;
            self.observe(shared, CallKind::Request, None)
                .finish(Err(&error));
            return Some((call.id, Err(error)));
        };
        let mut observer = self.observe(shared, CallKind::Request, Some(call.handler));
        if !self.router.admits(route, peer, shared.identity.as_ref()) {
            let error = denied(peer, &call);
            observer.finish(Err(&error));
            return Some((call.id, Err(error)));
        }
        let ctx = self.context(shared, peer, &call);
        let id = call.id;
        let span = tracing::debug_span!("grid.handle", %peer, handler = call.handler, mux = %id);
        let cancelled = ctx.cancelled();
        let mut work = function(ctx, call.payload);
        // Polled once right here, on the connection's driver: a handler that
        // answers without waiting (most do) costs no task, and its answer
        // leaves in the same write as whatever else the driver sends next.
        let first = span.in_scope(|| {
            let mut cx = Context::from_waker(Waker::noop());
            std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(&mut cx)))
        });
        match first {
            Ok(Poll::Ready(result)) => {
                Some((id, settle(Some(Ok(result)), peer, call.handler, observer)))
            }
            Err(panic) => Some((id, settle(Some(Err(panic)), peer, call.handler, observer))),
            Ok(Poll::Pending) => {
                let (peer, handler) = (peer.clone(), call.handler);
                let shared = shared.clone();
                // The task polls the handler again, with a waker that works.
                self.runtime.spawn(
                    async move {
                        let work = AssertUnwindSafe(work).catch_unwind();
                        let outcome = match select(pin!(work), pin!(cancelled)).await {
                            Either::Left((outcome, _)) => Some(outcome),
                            Either::Right(_) => None,
                        };
                        let result = settle(outcome, &peer, handler, observer);
                        shared.command(|inner, _| inner.answer(id, result));
                    }
                    .instrument(span),
                );
                None
            }
        }
    }

    fn start_stream(&self, shared: &Arc<Shared>, peer: &Arc<str>, call: IncomingCall) {
        let route = (call.handler, &call.subroute);
        let Some(entry) = self.router.find_stream(route.0, route.1).cloned() else {
            let error = Error::UnknownHandler;
            self.observe(shared, CallKind::Stream, None)
                .finish(Err(&error));
            shared
                .command(|inner, _| inner.proto.fail(call.id, error))
                .ok();
            return;
        };
        let mut observer = self.observe(shared, CallKind::Stream, Some(call.handler));
        if !self.router.admits(route, peer, shared.identity.as_ref()) {
            let error = denied(peer, &call);
            observer.finish(Err(&error));
            shared
                .command(|inner, _| inner.proto.fail(call.id, error))
                .ok();
            return;
        }
        let ctx = self.context(shared, peer, &call);
        let id = call.id;
        let accepted = shared.command(|inner, _| {
            let accepted = inner.proto.accept_stream(id, entry.window);
            if accepted.is_ok() {
                inner.incoming.insert(id, IncomingSlot::default());
                inner.streams.insert(
                    id,
                    StreamSlot {
                        halves: 2,
                        ..StreamSlot::default()
                    },
                );
            } else {
                // Cancelled before it started; the handler would only see
                // the cancel. Ending it frees its slot.
                let _ = inner.proto.finish(id);
            }
            accepted
        });
        if accepted.is_err() {
            observer.finish(Err(&Error::Cancelled));
            return;
        }
        let stream = Stream::new(shared.clone(), id);
        let shared = shared.clone();
        let (caller, handler) = (peer.clone(), call.handler);
        let span =
            tracing::debug_span!("grid.handle_stream", %peer, handler = call.handler, mux = %id);
        self.runtime.spawn(
            async move {
                let cancelled = ctx.cancelled();
                let (receiver, sender) = (stream.receiver, stream.sender);
                let work = AssertUnwindSafe((entry.handler)(ctx, call.payload, receiver, sender))
                    .catch_unwind();
                let outcome = {
                    let mut work = pin!(work);
                    match select(work.as_mut(), pin!(cancelled)).await {
                        Either::Left((outcome, _)) => Some(outcome),
                        Either::Right(_) => None,
                    }
                    // The handler future (and the stream halves it owns) drops here,
                    // before the lock below is taken.
                };
                let outcome = settle(outcome, &caller, handler, observer);
                shared.command(|inner, _| inner.end_stream(id, outcome));
            }
            .instrument(span),
        );
    }
}

/// What a handler ended with: `None` if it was cancelled.
type Outcome<T> = Option<std::thread::Result<Result<T, Error>>>;

/// A handler's outcome as its call's answer, recorded by `observer`. A
/// panic becomes an internal error; a cancelled call gets the empty answer,
/// which only frees its slot.
fn settle<T: Default>(
    outcome: Outcome<T>,
    peer: &str,
    handler: HandlerId,
    mut observer: CallObserver,
) -> Result<T, Error> {
    let result = match outcome {
        Some(Ok(result)) => result,
        Some(Err(panic)) => Err(panicked(panic, peer, handler)),
        None => {
            observer.finish(Err(&Error::Cancelled));
            return Ok(T::default());
        }
    };
    observer.finish(result.as_ref().map(|_| ()));
    result
}

/// The caller's error for a route that does not admit it: it names the
/// handler and the caller, so the operator knows which `Access` to change.
fn denied(peer: &str, call: &IncomingCall) -> Error {
    let subroute = if call.subroute.is_empty() {
        String::new()
    } else {
        format!(" subroute {:?}", String::from_utf8_lossy(&call.subroute))
    };
    Error::PermissionDenied(format!(
        "handler {}{subroute} does not admit {peer:?} (see Router::restrict on the called node)",
        call.handler
    ))
}

/// Logs a handler's panic where the operator looks, and gives the caller an
/// internal error without the panic's text, which may hold anything the
/// handler had in hand.
fn panicked(panic: Box<dyn std::any::Any + Send>, peer: &str, handler: HandlerId) -> Error {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    tracing::error!(%peer, handler, panic = %message, "handler panicked");
    Error::Internal(format!(
        "handler {handler} panicked; the called node's log has the details"
    ))
}
