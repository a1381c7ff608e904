//! Single requests as futures whose drop cancels the call on the remote side.

use std::collections::hash_map::Entry;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use grid_proto::{CallId, CallTarget, CommandError, Error};

use crate::deadline::{poll_open, CallDeadline, OpenLock, RoomWait};
use crate::handler::HandlerId;
use crate::shared::{RequestSlot, Shared};
use crate::telemetry::CallObserver;

/// A single request being built: add a subroute or timeout, then `.await` it.
#[must_use = "a request does nothing until awaited"]
#[derive(Debug)]
pub struct Request {
    pub(crate) shared: Result<Arc<Shared>, Error>,
    pub(crate) handler: HandlerId,
    pub(crate) subroute: Bytes,
    pub(crate) payload: Bytes,
    pub(crate) deadline: CallDeadline,
    pub(crate) observer: CallObserver,
}

impl Request {
    /// Addresses a subroute of the handler (e.g. one disk of many).
    pub fn subroute(mut self, subroute: impl Into<Bytes>) -> Request {
        self.subroute = subroute.into();
        self
    }

    /// The call's deadline, relative to when the request was created with
    /// [`Peer::request`](crate::Peer::request) (default one minute). It bounds
    /// the whole `.await`, including any wait for room in a full send buffer:
    /// when it passes first, the call ends with [`Error::DeadlineExceeded`]
    /// without being sent. The remote handler is given the time left and is
    /// cancelled when it passes.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.deadline.set_timeout(timeout);
        self
    }
}

impl IntoFuture for Request {
    type Output = Result<Bytes, Error>;
    type IntoFuture = RequestFuture;

    fn into_future(mut self) -> RequestFuture {
        RequestFuture {
            observer: std::mem::take(&mut self.observer),
            state: State::Start {
                request: self,
                room: RoomWait::default(),
            },
        }
    }
}

enum State {
    Start { request: Request, room: RoomWait },
    Waiting { shared: Arc<Shared>, id: CallId },
    Done,
}

/// The future of a [`Request`]. Dropping it before it completes cancels the
/// call: the remote handler's context is cancelled and its future dropped.
#[must_use = "futures do nothing unless polled"]
pub struct RequestFuture {
    state: State,
    /// Outside `state`, which drops the request once it is sent.
    observer: CallObserver,
}

impl std::fmt::Debug for RequestFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestFuture").finish_non_exhaustive()
    }
}

impl Future for RequestFuture {
    type Output = Result<Bytes, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = std::task::ready!(self.poll_answer(cx));
        self.observer.finish(answer.as_ref().map(|_| ()));
        Poll::Ready(answer)
    }
}

impl RequestFuture {
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Error>> {
        let this = self;
        match &mut this.state {
            State::Start { request, room } => {
                let shared = match &request.shared {
                    Ok(shared) => shared.clone(),
                    Err(error) => {
                        let error = error.clone();
                        this.state = State::Done;
                        return Poll::Ready(Err(error));
                    }
                };
                let opened = poll_open(
                    &shared,
                    OpenLock::OpeningCall,
                    &request.deadline,
                    room,
                    cx,
                    |inner, now, left, waker| {
                        let target = CallTarget::with_subroute(request.handler, &request.subroute);
                        let id = inner.proto.open_request(
                            now,
                            target,
                            request.payload.clone(),
                            Some(left),
                        )?;
                        inner
                            .requests
                            .insert(id, RequestSlot::Waiting(Some(waker.clone())));
                        Ok(id)
                    },
                );
                match opened {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(error)) => {
                        this.state = State::Done;
                        Poll::Ready(Err(error))
                    }
                    Poll::Ready(Ok(id)) => {
                        this.state = State::Waiting { shared, id };
                        Poll::Pending
                    }
                }
            }
            State::Waiting { shared, id } => {
                let mut inner = shared.lock();
                // One lookup, whether the answer is there or not.
                let Entry::Occupied(mut slot) = inner.requests.entry(*id) else {
                    drop(inner);
                    this.state = State::Done;
                    return Poll::Ready(Err(Error::Disconnected));
                };
                if let RequestSlot::Waiting(waker) = slot.get_mut() {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                let result = match slot.remove() {
                    RequestSlot::Done(result) => result,
                    RequestSlot::Waiting(_) => Err(Error::Disconnected),
                };
                drop(inner);
                this.state = State::Done;
                Poll::Ready(result)
            }
            State::Done => panic!("RequestFuture polled after it completed"),
        }
    }
}

impl Drop for RequestFuture {
    fn drop(&mut self) {
        if let State::Waiting { shared, id } = &self.state {
            let id = *id;
            shared.command(|inner, _| {
                if let Some(RequestSlot::Waiting(_)) = inner.requests.remove(&id) {
                    // The call is still open: tell the peer to stop working on it.
                    let _ = inner.proto.cancel(id);
                }
            });
        }
    }
}

/// The outcome of a call whose opening was refused for good. Opening refuses
/// only with a call outcome or back-pressure, which the caller waits out.
pub(crate) fn refused_call(refused: CommandError) -> Error {
    match refused {
        CommandError::Call(error) => error,
        other => Error::Protocol(format!("opening a call was refused: {other}")),
    }
}
