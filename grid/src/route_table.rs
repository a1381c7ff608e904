//! Values by route, looked up once per incoming call. Most routes have no
//! subroute, so those are keyed by the handler id alone: finding one hashes
//! two bytes and compares no byte strings.

use bytes::Bytes;
use rustc_hash::FxHashMap;

use crate::handler::HandlerId;

/// A value per route (handler id and subroute).
#[derive(Clone, Debug)]
pub(crate) struct RouteTable<T> {
    plain: FxHashMap<HandlerId, T>,
    with_subroute: FxHashMap<(HandlerId, Bytes), T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            plain: FxHashMap::default(),
            with_subroute: FxHashMap::default(),
        }
    }
}

impl<T> RouteTable<T> {
    /// The value at `handler` and `subroute` (empty for none).
    pub(crate) fn get(&self, handler: HandlerId, subroute: &Bytes) -> Option<&T> {
        if subroute.is_empty() {
            self.plain.get(&handler)
        } else if self.with_subroute.is_empty() {
            None
        } else {
            self.with_subroute.get(&(handler, subroute.clone()))
        }
    }

    /// Sets the value at a route; returns the one it replaces.
    pub(crate) fn insert(&mut self, handler: HandlerId, subroute: Bytes, value: T) -> Option<T> {
        if subroute.is_empty() {
            self.plain.insert(handler, value)
        } else {
            self.with_subroute.insert((handler, subroute), value)
        }
    }

    /// Whether a value is set at the route.
    pub(crate) fn contains(&self, handler: HandlerId, subroute: &Bytes) -> bool {
        self.get(handler, subroute).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.plain.len() + self.with_subroute.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every route and its value.
    pub(crate) fn into_routes(self) -> impl Iterator<Item = (HandlerId, Bytes, T)> {
        let plain = self
            .plain
            .into_iter()
            .map(|(handler, value)| (handler, Bytes::new(), value));
        let with_subroute = self
            .with_subroute
            .into_iter()
            .map(|((handler, subroute), value)| (handler, subroute, value));
        plain.chain(with_subroute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_and_without_a_subroute_are_apart() {
        let mut table = RouteTable::default();
        assert!(table.insert(7, Bytes::new(), "plain").is_none());
        assert!(table
            .insert(7, Bytes::from_static(b"disk-1"), "disk")
            .is_none());
        assert_eq!(table.get(7, &Bytes::new()), Some(&"plain"));
        assert_eq!(table.get(7, &Bytes::from_static(b"disk-1")), Some(&"disk"));
        assert_eq!(table.get(7, &Bytes::from_static(b"disk-2")), None);
        assert_eq!(table.get(8, &Bytes::new()), None);
        assert_eq!(table.insert(7, Bytes::new(), "again"), Some("plain"));
        assert_eq!(table.len(), 2);
        let mut routes: Vec<_> = table.into_routes().collect();
        routes.sort_by_key(|(_, subroute, _)| subroute.clone());
        assert_eq!(
            routes,
            [
                (7, Bytes::new(), "again"),
                (7, Bytes::from_static(b"disk-1"), "disk")
            ]
        );
    }
}
