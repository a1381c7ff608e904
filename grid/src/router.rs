//! The router: which handler serves which handler id and subroute.
//!
//! Every kind of handler (single request, stream, typed single request,
//! typed stream) is registered here and only here, so the bounds a handler
//! function must meet are written once. A route is a handler id, or a handler
//! id with a subroute; the same method registers both, so subroutes need no
//! methods of their own.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use grid_proto::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::access::Access;
use crate::handler::{Ctx, HandlerError, HandlerId};
use crate::identity::PeerIdentity;
use crate::route_table::RouteTable;
use crate::runtime::BoxFuture;
use crate::stream::{StreamReceiver, StreamSender};
use crate::typed::{self, Single, Streaming, TypedReceiver, TypedSender};

/// Where a call is delivered: a handler id, and a subroute (empty for none).
///
/// Made from a [`HandlerId`] (`ECHO`) or a handler id with a subroute
/// (`(DISK, "disk-9")`); registration methods take `impl Into<Route>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    handler: HandlerId,
    subroute: Bytes,
}

impl Route {
    /// `handler` under `subroute`.
    pub fn new(handler: HandlerId, subroute: impl Into<Bytes>) -> Route {
        Route {
            handler,
            subroute: subroute.into(),
        }
    }

    /// The handler id.
    pub fn handler(&self) -> HandlerId {
        self.handler
    }

    /// The subroute (empty for none).
    pub fn subroute(&self) -> &[u8] {
        &self.subroute
    }
}

impl From<HandlerId> for Route {
    fn from(handler: HandlerId) -> Route {
        Route::new(handler, Bytes::new())
    }
}

impl<S: Into<Bytes>> From<(HandlerId, S)> for Route {
    fn from((handler, subroute): (HandlerId, S)) -> Route {
        Route::new(handler, subroute)
    }
}

/// Where a typed call is delivered: a typed definition ([`Single`] or
/// [`Streaming`]), which carries its handler id and its types, and a subroute
/// (empty for none).
///
/// Made from `&DEF` or `(&DEF, "subroute")`; typed registration methods take
/// `impl Into<TypedRoute<..>>`.
#[derive(Debug)]
pub struct TypedRoute<'a, D> {
    def: &'a D,
    subroute: Bytes,
}

impl<'a, D> From<&'a D> for TypedRoute<'a, D> {
    fn from(def: &'a D) -> Self {
        TypedRoute {
            def,
            subroute: Bytes::new(),
        }
    }
}

impl<'a, D, S: Into<Bytes>> From<(&'a D, S)> for TypedRoute<'a, D> {
    fn from((def, subroute): (&'a D, S)) -> Self {
        TypedRoute {
            def,
            subroute: subroute.into(),
        }
    }
}

/// A single-request handler, type-erased. Its error is what the caller gets:
/// [`Error::Remote`] for the handler's own errors, [`Error::Decode`] when a
/// typed handler's request does not decode.
pub(crate) type SingleFn =
    Arc<dyn Fn(Ctx, Bytes) -> BoxFuture<'static, Result<Bytes, Error>> + Send + Sync>;

/// A stream handler, type-erased.
pub(crate) type StreamFn = Arc<
    dyn Fn(Ctx, Bytes, StreamReceiver, StreamSender) -> BoxFuture<'static, Result<(), Error>>
        + Send
        + Sync,
>;

/// A registered stream handler with its receive window, in bytes.
#[derive(Clone)]
pub(crate) struct StreamEntry {
    pub(crate) handler: StreamFn,
    pub(crate) window: u32,
}

/// Registering the same handler id and subroute twice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("handler {handler} with subroute {subroute:?} is registered twice")]
pub struct DuplicateHandler {
    /// The handler id.
    pub handler: HandlerId,
    /// The subroute.
    pub subroute: String,
}

/// A node's handlers by route. Handed to
/// [`ManagerBuilder::router`](crate::ManagerBuilder::router).
///
/// Each method registers one handler and returns the router, so a node's
/// handlers read as one chain. Registering a route twice is not an error
/// here: the first duplicate is remembered and fails
/// [`ManagerBuilder::start`](crate::ManagerBuilder::start).
///
/// ```
/// use grid::{Bytes, Ctx, HandlerError, Router, StreamReceiver, StreamSender};
///
/// const ECHO: u16 = 1;
/// const DISK: u16 = 2;
/// const WALK: u16 = 3;
///
/// let router = Router::new()
///     .single(ECHO, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
///     .single((DISK, "disk-9"), |_ctx: Ctx, _request: Bytes| async move {
///         Err(HandlerError::from("disk-9 is offline"))
///     })
///     .stream(WALK, grid::DEFAULT_STREAM_WINDOW, |_ctx: Ctx, _root: Bytes, _input: StreamReceiver, _output: StreamSender| async move {
///         Ok(())
///     });
/// assert_eq!(router.len(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Router {
    singles: RouteTable<SingleFn>,
    streams: RouteTable<StreamEntry>,
    /// Routes limited to some callers; the others admit every peer.
    access: RouteTable<Access>,
    duplicate: Option<DuplicateHandler>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("singles", &self.singles.len())
            .field("streams", &self.streams.len())
            .field("restricted", &self.access.len())
            .field("duplicate", &self.duplicate)
            .finish()
    }
}

impl Router {
    /// A router without handlers.
    pub fn new() -> Router {
        Router::default()
    }

    /// How many handlers are registered.
    pub fn len(&self) -> usize {
        self.singles.len() + self.streams.len()
    }

    /// Whether no handler is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a single-request handler at `route`: a handler id, or a
    /// handler id with a subroute.
    ///
    /// The handler's future is first polled on the connection's own task, and
    /// becomes a task of its own only if it has to wait: a handler that
    /// answers at once costs no task and no wake-up. So work done before the
    /// first `.await` holds up the connection; move long computations to a
    /// blocking pool (e.g. `tokio::task::spawn_blocking`).
    pub fn single<F, Fut>(self, route: impl Into<Route>, function: F) -> Self
    where
        F: Fn(Ctx, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, HandlerError>> + Send + 'static,
    {
        let boxed: SingleFn = Arc::new(move |ctx, payload| -> BoxFuture<'static, _> {
            let work = function(ctx, payload);
            Box::pin(async move {
                work.await
                    .map_err(|HandlerError(message)| Error::Remote(message))
            })
        });
        self.add_single(route.into(), boxed)
    }

    /// Registers a stream handler at `route`. `window` is the handler's
    /// largest receive window in bytes: how much the caller may send ahead
    /// of the handler reading it, each message counting its length plus
    /// [`grid_proto::STREAM_MESSAGE_OVERHEAD`]. It starts smaller and grows
    /// while that pays, as described at
    /// [`StreamRequest::window`](crate::StreamRequest::window);
    /// [`crate::DEFAULT_STREAM_WINDOW`] (1 MiB) suits small and large
    /// messages alike.
    pub fn stream<F, Fut>(self, route: impl Into<Route>, window: u32, function: F) -> Self
    where
        F: Fn(Ctx, Bytes, StreamReceiver, StreamSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let boxed: StreamFn = Arc::new(move |ctx, payload, rx, tx| -> BoxFuture<'static, _> {
            let work = function(ctx, payload, rx, tx);
            Box::pin(async move {
                work.await
                    .map_err(|HandlerError(message)| Error::Remote(message))
            })
        });
        self.add_stream(route.into(), boxed, window)
    }

    /// Registers a typed single-request handler (see [`crate::typed`]) at
    /// `route`: `&DEF`, or `(&DEF, subroute)`.
    pub fn handle<'a, Req, Resp, E, F, Fut>(
        self,
        route: impl Into<TypedRoute<'a, Single<Req, Resp, E>>>,
        function: F,
    ) -> Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, E>> + Send + 'static,
    {
        let TypedRoute { def, subroute } = route.into();
        let id = def.id();
        let boxed: SingleFn = Arc::new(move |ctx, payload: Bytes| -> BoxFuture<'static, _> {
            let request = typed::decode_request::<Req>(&payload, "request", id);
            let work = request.map(|request| function(ctx, request));
            Box::pin(async move {
                match work?.await {
                    Ok(response) => typed::encode_response(&response, id),
                    Err(error) => Err(Error::Remote(typed::handler_error(&error).0)),
                }
            })
        });
        self.add_single(Route::new(id, subroute), boxed)
    }

    /// Registers a typed stream handler (see [`crate::typed`]) at `route`:
    /// `&DEF`, or `(&DEF, subroute)`, with a receive window of `window` bytes
    /// (as for [`stream`](Self::stream)).
    pub fn handle_stream<'a, Init, In, Out, E, F, Fut>(
        self,
        route: impl Into<TypedRoute<'a, Streaming<Init, In, Out, E>>>,
        window: u32,
        function: F,
    ) -> Self
    where
        Init: DeserializeOwned + Send + 'static,
        In: DeserializeOwned + Send + 'static,
        Out: Serialize + Send + 'static,
        E: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx, Init, TypedReceiver<In, E>, TypedSender<Out>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let TypedRoute { def, subroute } = route.into();
        let id = def.id();
        let boxed: StreamFn = Arc::new(
            move |ctx, payload: Bytes, rx, tx| -> BoxFuture<'static, _> {
                let init = typed::decode_request::<Init>(&payload, "initial payload", id);
                let work = init.map(|init| {
                    function(
                        ctx,
                        init,
                        TypedReceiver::new(rx, id),
                        TypedSender::new(tx, id),
                    )
                });
                Box::pin(async move {
                    work?
                        .await
                        .map_err(|error| Error::Remote(typed::handler_error(&error).0))
                })
            },
        );
        self.add_stream(Route::new(id, subroute), boxed, window)
    }

    /// Limits who may call the handler at `route` (a handler id, or a
    /// handler id with a subroute, exactly as registered; before or after
    /// registering it). Other callers get
    /// [`Error::PermissionDenied`](crate::Error::PermissionDenied). A route
    /// restricted twice keeps the last [`Access`].
    ///
    /// ```
    /// use grid::{Access, Bytes, Ctx, Router};
    /// const ADMIN: u16 = 9;
    /// let router = Router::new()
    ///     .single(ADMIN, |_ctx: Ctx, request: Bytes| async move { Ok(request) })
    ///     .restrict(ADMIN, Access::peers(["10.0.0.1:7000"]));
    /// # assert_eq!(router.len(), 1);
    /// ```
    pub fn restrict(mut self, route: impl Into<Route>, access: Access) -> Self {
        let route = route.into();
        self.access.insert(route.handler, route.subroute, access);
        self
    }

    /// Whether `peer`, over a connection that verified `identity`, may call
    /// the handler at `handler` and `subroute`.
    pub(crate) fn admits(
        &self,
        (handler, subroute): (HandlerId, &Bytes),
        peer: &str,
        identity: Option<&PeerIdentity>,
    ) -> bool {
        // Most routers restrict nothing: no hashing of the route per call then.
        self.access.is_empty()
            || self
                .access
                .get(handler, subroute)
                .is_none_or(|access| access.admits(peer, identity))
    }

    /// Adds every handler of `other`, e.g. a subsystem's own router. A route
    /// both have is a duplicate, reported by
    /// [`ManagerBuilder::start`](crate::ManagerBuilder::start).
    pub fn merge(mut self, other: Router) -> Self {
        if let Some(duplicate) = other.duplicate {
            self.duplicate.get_or_insert(duplicate);
        }
        for (handler, subroute, function) in other.singles.into_routes() {
            self = self.add_single(Route { handler, subroute }, function);
        }
        for (handler, subroute, entry) in other.streams.into_routes() {
            self = self.add_stream(Route { handler, subroute }, entry.handler, entry.window);
        }
        for (handler, subroute, access) in other.access.into_routes() {
            self.access.insert(handler, subroute, access);
        }
        self
    }

    /// The first route registered twice, if any.
    pub(crate) fn duplicate(&self) -> Option<&DuplicateHandler> {
        self.duplicate.as_ref()
    }

    /// The single-request handler for a call's handler id and subroute.
    pub(crate) fn find_single(&self, handler: HandlerId, subroute: &Bytes) -> Option<&SingleFn> {
        self.singles.get(handler, subroute)
    }

    /// The stream handler for a call's handler id and subroute.
    pub(crate) fn find_stream(&self, handler: HandlerId, subroute: &Bytes) -> Option<&StreamEntry> {
        self.streams.get(handler, subroute)
    }

    fn add_single(mut self, route: Route, function: SingleFn) -> Self {
        if self.check_free(&route) {
            self.singles.insert(route.handler, route.subroute, function);
        }
        self
    }

    fn add_stream(mut self, route: Route, handler: StreamFn, window: u32) -> Self {
        if self.check_free(&route) {
            let entry = StreamEntry { handler, window };
            self.streams.insert(route.handler, route.subroute, entry);
        }
        self
    }

    /// Whether `route` is still free; remembers the first one that is not,
    /// for `start` to report, so registering stays a plain chain.
    fn check_free(&mut self, route: &Route) -> bool {
        let (handler, subroute) = (route.handler, &route.subroute);
        if !self.singles.contains(handler, subroute) && !self.streams.contains(handler, subroute) {
            return true;
        }
        self.duplicate.get_or_insert_with(|| DuplicateHandler {
            handler: route.handler,
            subroute: String::from_utf8_lossy(&route.subroute).into_owned(),
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo(_ctx: Ctx, request: Bytes) -> Result<Bytes, HandlerError> {
        Ok(request)
    }

    async fn drain(
        _: Ctx,
        _: Bytes,
        _: StreamReceiver,
        _: StreamSender,
    ) -> Result<(), HandlerError> {
        Ok(())
    }

    #[test]
    fn routes_with_and_without_subroute_are_distinct() {
        let router = Router::new()
            .single(1, echo)
            .single((1, "disk-1"), echo)
            .stream((1, "disk-2"), 4, drain);
        assert_eq!(router.len(), 3);
        assert_eq!(router.duplicate(), None);
        assert!(router.find_single(1, &Bytes::new()).is_some());
        assert!(router.find_single(1, &Bytes::from("disk-1")).is_some());
        assert!(router.find_stream(1, &Bytes::from("disk-2")).is_some());
        assert!(router.find_single(1, &Bytes::from("disk-2")).is_none());
        assert!(router.find_stream(1, &Bytes::new()).is_none());
    }

    #[test]
    fn first_duplicate_is_remembered_across_kinds() {
        let router = Router::new()
            .single((3, "a"), echo)
            .stream((3, "a"), 1, drain)
            .single(4, echo)
            .single(4, echo);
        let duplicate = router.duplicate().cloned();
        assert_eq!(
            duplicate,
            Some(DuplicateHandler {
                handler: 3,
                subroute: "a".to_string()
            })
        );
        assert_eq!(router.len(), 2);
    }

    #[test]
    fn restricted_routes_admit_only_their_callers() {
        let router = Router::new()
            .single(1, echo)
            .single((1, "disk-1"), echo)
            .restrict((1, "disk-1"), Access::peers(["a"]));
        let (plain, disk) = (Bytes::new(), Bytes::from("disk-1"));
        assert!(router.admits((1, &plain), "b", None));
        assert!(router.admits((1, &disk), "a", None));
        assert!(!router.admits((1, &disk), "b", None));
        let merged = Router::new().merge(router);
        assert!(!merged.admits((1, &disk), "b", None));
    }

    #[test]
    fn merged_routers_report_shared_routes() {
        let disks = Router::new().stream((7, "disk-1"), 4, drain);
        let router = Router::new().single(1, echo).merge(disks);
        assert_eq!(router.len(), 2);
        assert_eq!(router.duplicate(), None);
        let again = Router::new().stream((7, "disk-1"), 4, drain);
        let router = router.merge(again);
        assert_eq!(router.duplicate().map(|d| d.handler), Some(7));
    }
}
