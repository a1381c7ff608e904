//! Typed calls, handlers and streams: any serde type, encoded as MessagePack.
//!
//! A thin layer over the byte API: a typed call encodes its request, makes an
//! ordinary byte call and decodes the answer. Handler definitions are shared
//! constants, so caller and handler agree on the types at compile time.

use std::cell::RefCell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream as FuturesStream;
use grid_proto::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::call::{Request, RequestFuture};
use crate::handler::{HandlerError, HandlerId};
use crate::stream::{SendError, StreamReceiver, StreamRequest, StreamSender};
use crate::telemetry::CallObserver;

/// First byte of an encoded typed handler error. 0xC1 is never used by
/// MessagePack and is not valid UTF-8, so a typed error is told apart from a
/// plain text error (an untyped handler's, or a panic's) by its first byte.
const TYPED_ERROR_MARKER: u8 = 0xC1;

/// Encode buffers start at this size and are reused between messages.
const ENCODE_BUFFER: usize = 4096;

thread_local! {
    static ENCODER: RefCell<BytesMut> = RefCell::new(BytesMut::with_capacity(ENCODE_BUFFER));
}

/// Encodes `value` as MessagePack into the thread's reusable buffer. The
/// buffer's allocation is reclaimed once earlier payloads cut from it are
/// dropped, so steady traffic encodes without allocating.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    prefix: Option<u8>,
) -> Result<Bytes, String> {
    ENCODER.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.capacity() < ENCODE_BUFFER {
            buf.reserve(ENCODE_BUFFER);
        }
        if let Some(byte) = prefix {
            buf.put_u8(byte);
        }
        let mut writer = (&mut *buf).writer();
        match rmp_serde::encode::write_named(&mut writer, value) {
            Ok(()) => Ok(buf.split().freeze()),
            Err(error) => {
                buf.clear();
                Err(error.to_string())
            }
        }
    })
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str, handler: HandlerId) -> Result<T, Error> {
    rmp_serde::from_slice(bytes).map_err(|error| {
        Error::Decode(format!(
            "{what} of handler {handler} is not a {}: {error}",
            std::any::type_name::<T>()
        ))
    })
}

/// `call` carrying `encoded`, or the encoding's error, which the call's
/// observer records: a call that is never sent counts as failed to encode,
/// not as abandoned.
fn with_payload<C>(
    mut call: C,
    encoded: Result<Bytes, Error>,
    observer: fn(&mut C) -> &mut CallObserver,
    carrying: fn(C, Bytes) -> C,
) -> Result<C, Error> {
    match encoded {
        Ok(payload) => Ok(carrying(call, payload)),
        Err(error) => {
            observer(&mut call).finish(Err(&error));
            Err(error)
        }
    }
}

fn encode_or_error<T: Serialize + ?Sized>(
    value: &T,
    what: &str,
    handler: HandlerId,
) -> Result<Bytes, Error> {
    encode(value, None).map_err(|error| {
        Error::Encode(format!(
            "cannot encode {what} of handler {handler} ({}): {error}",
            std::any::type_name::<T>()
        ))
    })
}

/// The failure of a typed call: the handler's own error, decoded, or
/// anything else that can go wrong with a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypedError<E> {
    /// The handler returned this error.
    Remote(E),
    /// The call failed otherwise (including a handler error that is not an
    /// `E`, such as a panic's text).
    Grid(Error),
}

impl<E: fmt::Debug> fmt::Display for TypedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypedError::Remote(error) => write!(f, "remote handler error: {error:?}"),
            TypedError::Grid(error) => error.fmt(f),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for TypedError<E> {}

impl<E> From<Error> for TypedError<E> {
    fn from(error: Error) -> Self {
        TypedError::Grid(error)
    }
}

impl<E: DeserializeOwned> TypedError<E> {
    fn from_call(error: Error) -> TypedError<E> {
        match &error {
            Error::Remote(bytes) if bytes.first() == Some(&TYPED_ERROR_MARKER) => {
                match rmp_serde::from_slice(&bytes[1..]) {
                    Ok(remote) => TypedError::Remote(remote),
                    Err(_) => TypedError::Grid(error),
                }
            }
            _ => TypedError::Grid(error),
        }
    }
}

/// Encodes a handler's error so that a typed caller can decode it.
pub(crate) fn handler_error<E: Serialize>(error: &E) -> HandlerError {
    match encode(error, Some(TYPED_ERROR_MARKER)) {
        Ok(bytes) => HandlerError(bytes),
        Err(reason) => HandlerError::from(format!(
            "cannot encode the handler's error ({}): {reason}",
            std::any::type_name::<E>()
        )),
    }
}

/// A typed single-request handler: its id and the types on the wire. Define
/// it once as a constant shared by callers and the node that handles it.
///
/// ```
/// use grid::typed::Single;
/// # #[derive(serde::Serialize, serde::Deserialize)] struct DiskInfo;
/// const DISK_INFO: Single<String, DiskInfo, String> = Single::new(12);
/// ```
pub struct Single<Req, Resp, E = String> {
    id: HandlerId,
    types: PhantomData<fn(Req) -> Result<Resp, E>>,
}

impl<Req, Resp, E> Single<Req, Resp, E> {
    /// The definition of handler `id`.
    pub const fn new(id: HandlerId) -> Self {
        Single {
            id,
            types: PhantomData,
        }
    }

    /// The handler id.
    pub const fn id(&self) -> HandlerId {
        self.id
    }
}

impl<Req, Resp, E> Clone for Single<Req, Resp, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp, E> Copy for Single<Req, Resp, E> {}

impl<Req, Resp, E> fmt::Debug for Single<Req, Resp, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Single({}: {} -> {})",
            self.id,
            std::any::type_name::<Req>(),
            std::any::type_name::<Resp>()
        )
    }
}

/// A typed stream handler: its id, the initial payload's type, the types of
/// the messages each way, and the handler's error type.
pub struct Streaming<Init, In, Out, E = String> {
    id: HandlerId,
    types: PhantomData<StreamTypes<Init, In, Out, E>>,
}

/// The types of a [`Streaming`] definition, as a function type so the
/// definition is `Send`, `Sync` and `Copy` whatever they are.
type StreamTypes<Init, In, Out, E> = fn(Init, In) -> Result<Out, E>;

impl<Init, In, Out, E> Streaming<Init, In, Out, E> {
    /// The definition of stream handler `id`. `In` flows from caller to
    /// handler, `Out` from handler to caller.
    pub const fn new(id: HandlerId) -> Self {
        Streaming {
            id,
            types: PhantomData,
        }
    }

    /// The handler id.
    pub const fn id(&self) -> HandlerId {
        self.id
    }
}

impl<Init, In, Out, E> Clone for Streaming<Init, In, Out, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Init, In, Out, E> Copy for Streaming<Init, In, Out, E> {}

impl<Init, In, Out, E> fmt::Debug for Streaming<Init, In, Out, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Streaming({})", self.id)
    }
}

/// A typed single request being built; `.await` it.
#[must_use = "a request does nothing until awaited"]
pub struct TypedRequest<Resp, E> {
    request: Result<Request, Error>,
    handler: HandlerId,
    types: PhantomData<fn() -> Result<Resp, E>>,
}

impl<Resp, E> fmt::Debug for TypedRequest<Resp, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedRequest")
            .field("handler", &self.handler)
            .finish()
    }
}

impl<Resp, E> TypedRequest<Resp, E> {
    pub(crate) fn new<Req: Serialize>(
        request: Request,
        def: &Single<Req, Resp, E>,
        body: &Req,
    ) -> Self {
        let handler = def.id;
        let request = with_payload(
            request,
            encode_or_error(body, "request", handler),
            |request| &mut request.observer,
            |request, payload| Request { payload, ..request },
        );
        TypedRequest {
            request,
            handler,
            types: PhantomData,
        }
    }

    /// Addresses a subroute of the handler.
    pub fn subroute(mut self, subroute: impl Into<Bytes>) -> Self {
        self.request = self.request.map(|r| r.subroute(subroute));
        self
    }

    /// The call's deadline, counted from the call's creation and bounding the
    /// whole `.await` (see [`Request::timeout`](crate::Request::timeout);
    /// default one minute).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request = self.request.map(|r| r.timeout(timeout));
        self
    }
}

impl<Resp: DeserializeOwned, E: DeserializeOwned> IntoFuture for TypedRequest<Resp, E> {
    type Output = Result<Resp, TypedError<E>>;
    type IntoFuture = TypedRequestFuture<Resp, E>;

    fn into_future(self) -> Self::IntoFuture {
        TypedRequestFuture {
            inner: self.request.map(IntoFuture::into_future),
            handler: self.handler,
            types: PhantomData,
        }
    }
}

/// The future of a [`TypedRequest`]; dropping it cancels the call.
#[must_use = "futures do nothing unless polled"]
pub struct TypedRequestFuture<Resp, E> {
    inner: Result<RequestFuture, Error>,
    handler: HandlerId,
    types: PhantomData<fn() -> Result<Resp, E>>,
}

impl<Resp, E> fmt::Debug for TypedRequestFuture<Resp, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedRequestFuture")
            .field("handler", &self.handler)
            .finish()
    }
}

impl<Resp: DeserializeOwned, E: DeserializeOwned> Future for TypedRequestFuture<Resp, E> {
    type Output = Result<Resp, TypedError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let handler = this.handler;
        let inner = match &mut this.inner {
            Ok(inner) => inner,
            Err(error) => return Poll::Ready(Err(TypedError::Grid(error.clone()))),
        };
        Pin::new(inner).poll(cx).map(|result| match result {
            Ok(bytes) => decode(&bytes, "response", handler).map_err(TypedError::Grid),
            Err(error) => Err(TypedError::from_call(error)),
        })
    }
}

/// A typed stream being built; `.open().await` it.
#[must_use = "a stream does nothing until opened"]
pub struct TypedStreamRequest<In, Out, E = String> {
    request: Result<StreamRequest, Error>,
    handler: HandlerId,
    types: PhantomData<fn(In) -> Result<Out, E>>,
}

impl<In, Out, E> fmt::Debug for TypedStreamRequest<In, Out, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedStreamRequest")
            .field("handler", &self.handler)
            .finish()
    }
}

impl<In: Serialize, Out: DeserializeOwned, E: DeserializeOwned> TypedStreamRequest<In, Out, E> {
    pub(crate) fn new<Init: Serialize>(
        request: StreamRequest,
        def: &Streaming<Init, In, Out, E>,
        init: &Init,
    ) -> Self {
        let handler = def.id;
        let request = with_payload(
            request,
            encode_or_error(init, "initial payload", handler),
            |request| &mut request.observer,
            |request, payload| StreamRequest { payload, ..request },
        );
        TypedStreamRequest {
            request,
            handler,
            types: PhantomData,
        }
    }

    /// Addresses a subroute of the handler.
    pub fn subroute(mut self, subroute: impl Into<Bytes>) -> Self {
        self.request = self.request.map(|r| r.subroute(subroute));
        self
    }

    /// Deadline of the whole stream, counted from its creation; it also
    /// bounds opening (see [`StreamRequest::timeout`](crate::StreamRequest::timeout);
    /// default one minute).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request = self.request.map(|r| r.timeout(timeout));
        self
    }

    /// Receive window in bytes: how much the handler may send ahead of this
    /// side reading it (see [`StreamRequest::window`](crate::StreamRequest::window);
    /// default [`crate::DEFAULT_STREAM_WINDOW`]).
    pub fn window(mut self, bytes: u32) -> Self {
        self.request = self.request.map(|r| r.window(bytes));
        self
    }

    /// Opens the stream. A handler that refuses it with its own `E` (it
    /// returns `Err` before answering) gives [`TypedError::Remote`].
    pub async fn open(self) -> Result<(TypedSender<In>, TypedReceiver<Out, E>), TypedError<E>> {
        let stream = self.request?.open().await.map_err(TypedError::from_call)?;
        let (sender, receiver) = stream.split();
        Ok((
            TypedSender::new(sender, self.handler),
            TypedReceiver::new(receiver, self.handler),
        ))
    }
}

/// The typed send half of a stream.
pub struct TypedSender<T> {
    inner: StreamSender,
    handler: HandlerId,
    types: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for TypedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSender")
            .field("handler", &self.handler)
            .finish()
    }
}

impl<T: Serialize> TypedSender<T> {
    pub(crate) fn new(inner: StreamSender, handler: HandlerId) -> Self {
        TypedSender {
            inner,
            handler,
            types: PhantomData,
        }
    }

    /// Sends one message, waiting for credit.
    pub async fn send(&mut self, message: &T) -> Result<(), SendError> {
        let bytes = encode_or_error(message, "stream message", self.handler)?;
        self.inner.send(bytes).await
    }

    /// Ends this side's output.
    pub fn finish(&mut self) -> Result<(), SendError> {
        self.inner.finish()
    }

    /// The byte-level sender underneath.
    pub fn into_inner(self) -> StreamSender {
        self.inner
    }
}

impl<T: Serialize> futures_sink::Sink<T> for TypedSender<T> {
    type Error = SendError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Pin::new(&mut self.get_mut().inner).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), SendError> {
        let this = self.get_mut();
        let bytes = encode_or_error(&item, "stream message", this.handler)?;
        Pin::new(&mut this.inner).start_send(bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// The typed receive half of a stream. On the caller's side, the handler's
/// own error `E` (its `Err` return) arrives decoded as
/// [`TypedError::Remote`], as for a typed single call; on the handler's side
/// only [`TypedError::Grid`] occurs, since callers send no errors.
pub struct TypedReceiver<T, E = String> {
    inner: StreamReceiver,
    handler: HandlerId,
    types: PhantomData<fn() -> Result<T, E>>,
}

impl<T, E> fmt::Debug for TypedReceiver<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedReceiver")
            .field("handler", &self.handler)
            .finish()
    }
}

impl<T: DeserializeOwned, E: DeserializeOwned> TypedReceiver<T, E> {
    pub(crate) fn new(inner: StreamReceiver, handler: HandlerId) -> Self {
        TypedReceiver {
            inner,
            handler,
            types: PhantomData,
        }
    }

    /// The next message; `None` after a clean end. A message that does not
    /// decode is an `Err` and the stream goes on; the handler's own error
    /// ends the stream as [`TypedError::Remote`].
    pub async fn recv(&mut self) -> Option<Result<T, TypedError<E>>> {
        let handler = self.handler;
        self.inner
            .recv()
            .await
            .map(|message| decode_message(message, handler))
    }

    /// The byte-level receiver underneath.
    pub fn into_inner(self) -> StreamReceiver {
        self.inner
    }
}

fn decode_message<T: DeserializeOwned, E: DeserializeOwned>(
    message: Result<Bytes, Error>,
    handler: HandlerId,
) -> Result<T, TypedError<E>> {
    match message {
        Ok(bytes) => Ok(decode(&bytes, "stream message", handler)?),
        Err(error) => Err(TypedError::from_call(error)),
    }
}

impl<T: DeserializeOwned, E: DeserializeOwned> FuturesStream for TypedReceiver<T, E> {
    type Item = Result<T, TypedError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let handler = this.handler;
        Pin::new(&mut this.inner)
            .poll_next(cx)
            .map(|message| message.map(|message| decode_message(message, handler)))
    }
}

/// Decodes a handler's request, for the registration wrappers.
pub(crate) fn decode_request<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    handler: HandlerId,
) -> Result<T, Error> {
    decode(bytes, what, handler)
}

/// Encodes a handler's response, for the registration wrappers.
pub(crate) fn encode_response<T: Serialize>(value: &T, handler: HandlerId) -> Result<Bytes, Error> {
    encode_or_error(value, "response", handler)
}
